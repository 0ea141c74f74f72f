"""What the benchmarks share: free ports on loopback, the connector config they run, and a process's CPU time and memory as /proc shows them."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connector_config(broker: str, s3: Any, channel: str, *, top: str = "", source: str = "", middleware: str = "") -> str:
    """One query binding to the store ``s3`` on ``channel``; the extras are YAML lines added to the top, the source's properties, the binding."""
    return f"""
apiPort: {free_port()}
apiHost: 127.0.0.1{top}
bindings:
  - name: bench
    source:
      kind: kubemq.query
      properties:
        address: "{broker}"
        channel: "{channel}"{source}
    target:
      kind: aws.s3
      properties:
        endpoint: "{s3.endpoint}"
        aws_key: "{s3.access_key}"
        aws_secret_key: "{s3.secret_key}"
        region: "us-east-1"{middleware}
"""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid: int, field: str) -> int:
    """A memory figure of ``/proc/PID/status`` in KiB (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found for pid {pid}")


def reset_high_water(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    Path(f"/proc/{pid}/clear_refs").write_text("5")
