"""What the benchmarks share: free ports on loopback and the connector config they run."""

from __future__ import annotations

import socket
from typing import Any


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
