"""What grpcio alone holds in memory to receive or to send one large message: the floor under any KubeMQ client.

The official SDK, and so the connector, reaches KubeMQ through grpcio. This
measures one process receiving (or sending) a single message of the given
size from (or to) a peer process, with nothing else in the way: no protobuf,
no SDK, no connector, the bytes handed to and taken from gRPC as they are.
A message is received the way a subscriber receives one (on a server
stream, after a first small message) and sent the way a reply is sent (a
unary call whose bytes are made inside the measurement, as a reply's are).
The figure is the process's peak resident memory above its RSS just before
(``VmHWM``, reset through ``clear_refs``).

    python benchmarks/grpc_floor.py receive BYTES
    python benchmarks/grpc_floor.py send BYTES

It prints the peak growth in MiB; ``bench_large_objects.py`` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

_SERVICE = "floor.Floor"
_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def memory_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found")


def reset_high_water() -> int:
    """Reset ``VmHWM`` to the current RSS and return that RSS in KiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return memory_kib("VmRSS")


async def peer(port_file: Path, stream_size: int) -> None:
    """The other end: ``Stream`` sends a small message, then one of ``stream_size`` bytes (made before any call); ``Call`` takes anything."""
    large = os.urandom(stream_size)

    async def stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b"warm-up"
        await asyncio.sleep(0.5)  # the receiver measures from its idle state
        yield large

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b""

    handlers = {
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Call": grpc.unary_unary_rpc_method_handler(call),
    }
    server = grpc.aio.server(options=_UNLIMITED)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(_SERVICE, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))
    await server.wait_for_termination()


async def receive(address: str) -> float:
    """The peak growth in MiB while the stream's large message arrives."""
    async with grpc.aio.insecure_channel(address, options=_UNLIMITED) as channel:
        base = 0
        async for message in channel.unary_stream(f"/{_SERVICE}/Stream")(b""):
            if message == b"warm-up":
                base = reset_high_water()
        return (memory_kib("VmHWM") - base) / 1024


async def send(address: str, size: int) -> float:
    """The peak growth in MiB while a message of ``size`` bytes is made and sent."""
    async with grpc.aio.insecure_channel(address, options=_UNLIMITED) as channel:
        call = channel.unary_unary(f"/{_SERVICE}/Call")
        await call(b"")
        base = reset_high_water()
        await call(os.urandom(size))
        return (memory_kib("VmHWM") - base) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("direction", choices=["receive", "send", "peer"])
    parser.add_argument("size", type=int, help="the message's size in bytes")
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.direction == "peer":
        asyncio.run(peer(args.port_file, args.size))
        return
    port_file = Path(tempfile.gettempdir()) / f"grpc-floor-{os.getpid()}.port"
    stream_size = args.size if args.direction == "receive" else 0
    process = subprocess.Popen([sys.executable, __file__, "peer", str(stream_size), "--port-file", str(port_file)])
    try:
        while not port_file.exists() or not port_file.read_text():
            if process.poll() is not None:
                raise SystemExit("the peer process ended before listening")
            time.sleep(0.05)
        address = f"127.0.0.1:{port_file.read_text()}"
        peak = asyncio.run(receive(address) if args.direction == "receive" else send(address, args.size))
        print(f"{peak:.1f}")
    finally:
        process.terminate()
        process.wait(10)
        port_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
