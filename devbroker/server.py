"""Lifecycle of the embedded KubeMQ-compatible broker: bind, serve, stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
import structlog
from kubemq.grpc import kubemq_pb2_grpc

from devbroker.queues import QueueStore
from devbroker.routing import KINDS, Kind, SubscriptionRegistry
from devbroker.servicer import BrokerServicer

log = structlog.get_logger("devbroker")

# The real server's Grpc.BodyLimit default; grpc.aio would otherwise cap receives at 4 MiB.
MAX_MESSAGE_BYTES = 100 * 1024 * 1024

_SERVER_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Without this a second broker could silently share a busy port.
    ("grpc.so_reuseport", 0),
    # The SDK keeps idle connections alive with a ping every 10 s; grpc-core's default
    # policy counts those as abuse ("too many pings") and drops the subscription.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
    ("grpc.http2.max_ping_strikes", 0),
]

_SUBSCRIBER_POLL_SECONDS = 0.01


@dataclass(frozen=True)
class ServerTLS:
    """Server TLS for the broker, so clients' TLS settings can be tried without a KubeMQ cluster.

    With ``client_ca_file`` every client must present a certificate signed by
    it (mutual TLS); without it any client may connect.
    """

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """Read the files now: a missing one fails ``start``, not the first handshake."""
        pair = (self.key_file.read_bytes(), self.cert_file.read_bytes())
        client_ca = self.client_ca_file.read_bytes() if self.client_ca_file else None
        return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=client_ca is not None)

    @property
    def mode(self) -> str:
        return "mutual TLS" if self.client_ca_file else "TLS"


class EmbeddedBroker:
    """A gRPC server that the official KubeMQ SDK accepts as a KubeMQ server (plaintext unless given ``tls``)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, auth_token: str | None = None, tls: ServerTLS | None = None) -> None:
        self._host = host
        self._requested_port = port
        self._auth_token = auth_token
        self._tls = tls
        self._registry = SubscriptionRegistry()
        self._queues = QueueStore()
        self._server: grpc.aio.Server | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("broker is not started")
        return self._port

    @property
    def address(self) -> str:
        return f"{self._host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving; with port 0 the OS picks a free port (see :attr:`port`)."""
        if self._server is not None:
            raise RuntimeError("broker is already started")
        server = grpc.aio.server(options=_SERVER_OPTIONS)
        kubemq_pb2_grpc.add_kubemqServicer_to_server(BrokerServicer(self._registry, self._queues, auth_token=self._auth_token), server)  # type: ignore[no-untyped-call]  # generated code
        bind = f"{self._host}:{self._requested_port}"
        self._port = server.add_secure_port(bind, self._tls.credentials()) if self._tls else server.add_insecure_port(bind)
        await server.start()
        self._server = server
        log.info("embedded kubemq broker listening", address=self.address, transport=self._tls.mode if self._tls else "plaintext")

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving; subscriber streams end at once, other calls get ``grace`` seconds.

        Queue streams count as other calls: one still open after the grace is
        cancelled, and what its reader held goes back to the (in-memory) queue.
        """
        server, self._server = self._server, None
        if server is None:
            return
        self._registry.close_all()
        await server.stop(grace)
        log.info("embedded kubemq broker stopped", host=self._host, port=self._port)

    async def wait_for_subscribers(self, channel: str, count: int = 1, *, kind: Kind = "queries", timeout: float = 10.0) -> None:
        """Wait until ``count`` subscribers of ``kind`` would receive a message sent to ``channel``.

        Subscriptions are not acknowledged on the wire, so this is how a test
        knows it may send without racing the subscriber's registration.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        async with asyncio.timeout(timeout):
            while self._registry.count(kind, channel) < count:
                await asyncio.sleep(_SUBSCRIBER_POLL_SECONDS)

    async def queue_depth(self, channel: str) -> int:
        """Messages in a queue waiting for a reader (ready or delayed); held, un-acked ones excluded."""
        return self._queues.depth(channel)

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve_forever(host: str, port: int, auth_token: str | None, tls: ServerTLS | None = None) -> None:
    """Run a broker until cancelled, SIGINT or SIGTERM, then stop it cleanly (for the CLI)."""
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Only possible in the main thread; elsewhere cancellation is the way to stop.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop_requested.set)
            handled.append(signum)
    broker = EmbeddedBroker(host=host, port=port, auth_token=auth_token, tls=tls)
    try:
        await broker.start()
        log.info("kubemq broker ready", address=broker.address, auth="on" if auth_token else "off")
        await stop_requested.wait()
    finally:
        await broker.stop(grace=1.0)
        for signum in handled:
            loop.remove_signal_handler(signum)
