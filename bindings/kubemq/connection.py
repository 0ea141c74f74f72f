"""KubeMQ connection properties shared by every source kind, and the SDK client settings built from them.

``ConnectionProperties`` is what every kind has; ``SubscriptionProperties``
adds the subscription ``group`` of the stream kinds (queries, commands,
events, events-store). Queues have no groups: their readers always compete.
The TLS checks and the SDK's ``TLSConfig`` built here also serve the ``send``
and ``broker`` commands, so a file is judged with the same words everywhere.
"""

from __future__ import annotations

import functools
import ssl
import uuid
from pathlib import Path
from typing import Annotated, Any

from kubemq import ClientConfig, KeepAliveConfig, RetryPolicy, TLSConfig
from pydantic import AfterValidator, field_validator, model_validator

from bindings.devservices import EMBEDDED
from bindings.limits import MIB, RECEIVE_LIMIT, SERVER_MESSAGE_LIMIT
from bindings.properties import Properties, field


def check_channel_name(value: str, *, wildcards: bool = True) -> str:
    """KubeMQ's channel rules, checked at config time instead of at the first message."""
    if any(c.isspace() for c in value):
        raise ValueError("no white spaces are allowed")
    if value.endswith("."):
        raise ValueError("cannot end with '.'")
    if not wildcards and ("*" in value or ">" in value):
        raise ValueError("no wildcards are allowed")
    return value


# A channel a source writes to (responses, dead letters): no wildcards there.
OutputChannel = Annotated[str, AfterValidator(lambda value: check_channel_name(value, wildcards=False))]

TLS_OPTIONS = ("tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name")


def check_pem_file(path: str, *, key: bool = False) -> str:
    """Refuse at config time a TLS file that gRPC would refuse only at connect time.

    Messages name the path only: a key file's content never appears in them.
    """
    file = Path(path)
    if not file.exists():
        raise ValueError(f"file not found: {path}")
    if not file.is_file():
        raise ValueError(f"not a regular file: {path}")
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if not key and b"-----BEGIN CERTIFICATE-----" not in content:
        raise ValueError(f"no PEM certificate (-----BEGIN CERTIFICATE-----) in {path}")
    if key and b"ENCRYPTED" in content:
        raise ValueError(f"the private key in {path} is encrypted; gRPC needs an unencrypted PEM key")
    if key and b"PRIVATE KEY-----" not in content:
        raise ValueError(f"no PEM private key (-----BEGIN ... PRIVATE KEY-----) in {path}")
    return path


def key_pair_problem(cert_file: str | None, key_file: str | None, names: tuple[str, str]) -> str | None:
    """A certificate needs its own private key: one alone, or another key, fails only at the handshake."""
    if bool(cert_file) != bool(key_file):
        return f"{names[0]} and {names[1]} go together: give both (the certificate and its private key), or neither"
    if cert_file and key_file:
        try:
            # An empty password: an encrypted key fails here instead of prompting on the terminal.
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert_file, key_file, password=b"")
        except OSError:
            return f"{names[1]} is not the private key of {names[0]} ({key_file}, {cert_file})"
    return None


def sdk_tls(ca_file: str = "", cert_file: str = "", key_file: str = "", server_name: str = "") -> TLSConfig:
    """The SDK's TLS settings; paths, not contents, so the SDK re-reads rotated files on reconnect."""
    return TLSConfig(
        enabled=True,
        ca_file=Path(ca_file) if ca_file else None,
        cert_file=Path(cert_file) if cert_file else None,
        key_file=Path(key_file) if key_file else None,
        server_name_override=server_name or None,
    )


CertificateFile = Annotated[str, AfterValidator(check_pem_file)]
KeyFile = Annotated[str, AfterValidator(functools.partial(check_pem_file, key=True))]


def check_not_read_back(properties: Properties, name: str) -> None:
    """An output channel must not be the channel read: the source would read its own output, forever."""
    if getattr(properties, name) and getattr(properties, name) == getattr(properties, "channel", None):
        raise ValueError(f"{name} must differ from channel (the source would read back what it writes there)")


class KubemqClientProperties(Properties):
    """How to reach KubeMQ and as whom: what every component that talks to KubeMQ (a source or a target) has."""

    address: str = field(
        description="KubeMQ gRPC address `host:port`, or `embedded` to start the built-in development broker.",
        example="kubemq-cluster-grpc.kubemq:50000",
    )
    client_id: str = field("", description="Client id shown by KubeMQ; empty: the binding's name and a random suffix. With `sources > 1` each gets a `-<n>` suffix.", example="kubemq-s3")
    auth_token: str = field("", description="KubeMQ JWT auth token, sent as the `authorization` metadata.", example="${KUBEMQ_TOKEN}", secret=True)
    tls: bool = field(False, description="Connect to KubeMQ over TLS. Implied by any other `tls_*` property; `false` together with one of them is refused.", example=True)
    tls_ca_file: CertificateFile = field("", description="PEM file of the CA(s) that verify the KubeMQ server's certificate; empty: the system's trusted roots.", example="/etc/kubemq-s3/tls/ca.crt")
    tls_cert_file: CertificateFile = field("", description="PEM client certificate for mutual TLS; needs `tls_key_file`.", example="/etc/kubemq-s3/tls/tls.crt")
    tls_key_file: KeyFile = field("", description="PEM (unencrypted) private key of `tls_cert_file`; needs `tls_cert_file`. Only its path is ever shown.", example="/etc/kubemq-s3/tls/tls.key")
    tls_server_name: str = field(
        "", description="Name checked in the server's certificate instead of the address's host (when KubeMQ is reached by IP or another name).", example="kubemq-cluster-grpc.kubemq"
    )

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        if value == EMBEDDED:
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host:
            raise ValueError("no valid host found (expected host:port)")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("no valid port found (expected host:port)")
        return value

    @model_validator(mode="after")
    def _check_tls(self) -> KubemqClientProperties:
        if problem := key_pair_problem(self.tls_cert_file, self.tls_key_file, ("tls_cert_file", "tls_key_file")):
            raise ValueError(problem)
        given = [name for name in TLS_OPTIONS if getattr(self, name)]
        if given and not self.tls:
            # Certificates with TLS switched off is a contradiction, not a choice: plaintext would be a silent downgrade.
            if "tls" in self.model_fields_set:
                raise ValueError(f"tls is false but {', '.join(given)} {'is' if len(given) == 1 else 'are'} set: set tls to true, or remove them")
            object.__setattr__(self, "tls", True)
        if self.tls and self.address == EMBEDDED:
            raise ValueError("address 'embedded' starts a plaintext development broker; for TLS give the address of a KubeMQ server that serves it")
        return self

    def sdk_options(self) -> dict[str, Any]:
        """The SDK settings every client of this component shares: where, as whom, TLS."""
        options: dict[str, Any] = {"address": self.address}
        if self.auth_token:
            options["auth_token"] = self.auth_token
        if self.tls:
            options["tls"] = sdk_tls(self.tls_ca_file, self.tls_cert_file, self.tls_key_file, self.tls_server_name)
        return options


class ConnectionProperties(KubemqClientProperties):
    """A source's connection to KubeMQ: the channel it reads and how it subscribes (kubemq-targets names)."""

    channel: str = field(description="Channel to receive requests on.", example="query.aws.s3")
    sources: int = field(1, ge=1, le=1024, description="Parallel subscriptions (each its own client) in this process.", example=1)
    auto_reconnect: bool = field(True, description="Re-subscribe after the connection to KubeMQ is lost.", example=True)
    reconnect_interval_seconds: float = field(
        0, ge=0, le=1_000_000, description="First delay before re-subscribing (0 means 1 s); doubles per failure up to `reconnect_max_interval_seconds`, with jitter.", example=1
    )
    reconnect_max_interval_seconds: float = field(
        5,
        gt=0,
        le=1_000_000,
        description="Longest delay between re-subscribe attempts (at least `reconnect_interval_seconds`): once the network is back, the binding serves again within this plus `keepalive_timeout_seconds`.",
        example=5,
    )
    keepalive_interval_seconds: int = field(
        10,
        ge=5,
        le=86_400,
        description="Seconds between checks that KubeMQ still answers on this connection (a Ping call end to end, plus gRPC keepalive pings). Keep it below the idle timeout of every load balancer or NAT on the way (AWS NLB 350 s, Azure LB 4 min, GCP 10 min).",
        example=10,
    )
    keepalive_timeout_seconds: int = field(
        5,
        ge=1,
        le=3600,
        description="Seconds a check (or a new connection) may take before the connection counts as dead: the subscription is dropped, `/ready` answers 503 and a fresh connection is made.",
        example=5,
    )
    max_reconnects: int = field(0, ge=0, description="Give up after this many consecutive failed re-subscribes (0: never give up).", example=0)
    max_concurrency: int = field(32, ge=1, le=1000, description="Requests handled at once per binding; further messages wait (backpressure) instead of piling up.", example=32)
    max_message_size: int = field(
        SERVER_MESSAGE_LIMIT,
        ge=MIB,
        le=RECEIVE_LIMIT,
        description="Largest message sent, and largest request run, in bytes (the KubeMQ server's limit is 100 MiB). A larger request is still received, then refused unrun (a queue message is dead-lettered).",
        example=SERVER_MESSAGE_LIMIT,
    )
    do_not_parse_payload: bool = field(False, description="Pass the whole message body to the target as `data`, with empty metadata.", example=False)

    @field_validator("channel")
    @classmethod
    def _check_channel(cls, value: str) -> str:
        return check_channel_name(value)

    def client_config(self, index: int) -> ClientConfig:
        """SDK settings for subscription ``index`` (0-based)."""
        # The source names its client after its binding; an empty id lets the SDK make one from the host name.
        client_id = (self.client_id if self.sources == 1 else f"{self.client_id}-{index}") if self.client_id else None
        options: dict[str, Any] = {
            **self.sdk_options(),
            "client_id": client_id,
            "max_send_size": self.max_message_size,
            "max_receive_size": RECEIVE_LIMIT,
            "connection_pool_size": 1,
            "keep_alive": KeepAliveConfig(enabled=True, ping_interval_in_seconds=self.keepalive_interval_seconds, ping_timeout_in_seconds=self.keepalive_timeout_seconds, permit_without_calls=True),
            # The source's loop reconnects on a fresh client (see subscription.py); the SDK's own
            # reconnection would keep retrying the condemned channel beside it.
            "auto_reconnect": False,
            # Our own loop re-subscribes, and a queue or event source handles a failed send
            # itself (a queue message is rejected and comes back): an SDK-level retry could
            # publish it twice. Query and command sources opt into one retry (see requests.py).
            "retry_policy": RetryPolicy(max_retries=0),
        }
        return ClientConfig(**options)

    @property
    def connection(self) -> str:
        """``address/channel`` as kubemq-targets shows a source connection."""
        return f"{self.address}/{self.channel}"


class SubscriptionProperties(ConnectionProperties):
    """A stream subscription's properties: the connection plus its group."""

    group: str = field("", description="Subscription group: each message goes to one member, so replicas share the load. Random when empty and `sources > 1`.", example="kubemq-s3")

    @model_validator(mode="after")
    def _shared_group_for_parallel_sources(self) -> SubscriptionProperties:
        # Several subscriptions without a group would each get every message.
        if self.sources > 1 and not self.group:
            object.__setattr__(self, "group", str(uuid.uuid4()))
        return self


class ReplyProperties(Properties):
    """Where the fire-and-forget kinds (events, events-store, queue) publish each response."""

    response_channel: OutputChannel = field(
        "", description="If set, each request's response (the kubemq-targets Response JSON) is published to this channel, in the source's own pattern.", example="responses.aws.s3"
    )

    @model_validator(mode="after")
    def _response_channel_is_not_read(self) -> ReplyProperties:
        check_not_read_back(self, "response_channel")
        return self
