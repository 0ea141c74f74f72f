"""The ``kubemq-s3`` command line: run, validate, reload, schema, docs, broker, send.

A user's mistake (a missing file, an unreachable broker, a closed pipe) ends in
one line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bindings.errors import ConfigError
from bindings.internals import IncompatibleLibrary
from bindings.kubemq.client import PATTERNS, pattern_named
from connector.files.sizes import message_size, part_size
from connector.product import NAME, SEND_CLIENT_ID, default_channel

if TYPE_CHECKING:
    from kubemq import TLSConfig

    from bindings.registry import Registry

CONFIG_ENV, DEFAULT_CONFIG = "KUBEMQ_S3_CONFIG", "config.yaml"
ADDRESS_ENV, DEFAULT_ADDRESS = "KUBEMQ_ADDRESS", "localhost:50000"
AUTH_TOKEN_ENV = "KUBEMQ_AUTH_TOKEN"  # noqa: S105 - the name of a variable, not a token
# In the container the connector is the entrypoint, so PID 1.
CONNECTOR_PID = 1
GRPC_BIND_FAILED = "Failed to bind to address"  # grpc says so with a plain RuntimeError
USAGE = 2  # the exit code of a command line that cannot be right, as argparse uses it


class CommandError(Exception):
    """A mistake the command explains in one line on stderr, then exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _dispatch(argv)
        finally:
            sys.stdout.flush()  # here, not at interpreter exit, so a closed pipe is caught below
    except BrokenPipeError:
        # The reader left (`kubemq-s3 send ... | head -c1`): end quietly, as Python does for EPIPE (exit 1);
        # stdout goes to devnull so the interpreter's last flush has nothing to complain about.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _dispatch(argv: list[str] | None) -> int:
    # grpc-core reads this once at import: keep its INFO chatter (fork, goaway) out of the output.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    # The SDK warns on every plaintext channel; only its errors are worth showing.
    logging.getLogger("kubemq").setLevel(logging.ERROR)
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=NAME, description="KubeMQ <-> S3 connector, wire-compatible with kubemq-targets' aws.s3 target.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(title="commands")

    run = commands.add_parser("run", help="run the connector")
    _env_option(run, "-c", "--config", variable=CONFIG_ENV, fallback=DEFAULT_CONFIG, text="config file")
    run.add_argument("--no-watch", dest="watch", action="store_false", help="do not reload when the config file changes (default: watch it; SIGHUP reloads either way)")
    run.set_defaults(func=_run)

    validate = commands.add_parser("validate", help="check a config file and list every problem with its line")
    _env_option(validate, "-c", "--config", variable=CONFIG_ENV, fallback=DEFAULT_CONFIG, text="config file")
    validate.set_defaults(func=_validate)

    reload = commands.add_parser("reload", help="make a running connector reload its config file (sends it SIGHUP)")
    reload.add_argument("--pid", type=int, default=CONNECTOR_PID, help="process id of the connector (default: %(default)s, the connector in its container)")
    reload.set_defaults(func=_reload)

    schema = commands.add_parser("schema", help="print the JSON Schema of config.yaml")
    schema.set_defaults(func=_schema)

    docs = commands.add_parser("docs", help="print the configuration and method reference (Markdown)")
    docs.set_defaults(func=_docs)

    broker = commands.add_parser("broker", help="run the embedded KubeMQ-compatible development broker")
    broker.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    broker.add_argument("--port", type=int, default=50000, help="gRPC port (default: %(default)s)")
    _env_option(broker, "--auth-token", variable=AUTH_TOKEN_ENV, fallback=None, text="require this token from clients")
    broker.add_argument("--tls-cert-file", type=_pem_file(), metavar="PEM", help="serve TLS with this certificate (default: plaintext); needs --tls-key-file")
    broker.add_argument("--tls-key-file", type=_pem_file(key=True), metavar="PEM", help="private key of --tls-cert-file (default: none)")
    broker.add_argument("--tls-client-ca-file", type=_pem_file(), metavar="PEM", help="require client certificates signed by this CA (mutual TLS; default: none required)")
    broker.set_defaults(func=_broker)

    send = commands.add_parser("send", help="send one kubemq-targets request with the official SDK, in any pattern, and print the result")
    _env_option(send, "--address", variable=ADDRESS_ENV, fallback=DEFAULT_ADDRESS, text="KubeMQ gRPC host:port")
    send.add_argument(
        "--pattern",
        type=_pattern,
        metavar="{" + ",".join(PATTERNS) + "}",
        default="query",
        help="query and command wait for the reply; queue, events and events-store print the send result (default: %(default)s)",
    )
    send.add_argument("--channel", help="channel to send to (default: <pattern>.aws.s3, e.g. query.aws.s3)")
    send.add_argument("--response-channel", help="queue/events/events-store: wait for the response published on this channel and print it (default: do not wait)")
    send.add_argument("-m", "--metadata", action="append", default=[], metavar="KEY=VALUE", help="request metadata, repeatable (default: none)")
    data = send.add_mutually_exclusive_group()
    data.add_argument("--data-file", type=Path, metavar="FILE", help="file whose bytes are the request data (default: no data)")
    data.add_argument("--data-text", metavar="TEXT", help="text that is the request data (default: no data)")
    send.add_argument("--timeout", type=int, default=30, metavar="SECONDS", help="seconds to wait for the reply or response (default: %(default)s)")
    _env_option(send, "--auth-token", variable=AUTH_TOKEN_ENV, fallback=None, text="token to present to KubeMQ")
    send.add_argument("--output", type=Path, metavar="FILE", help="write the reply's data bytes to this file instead of printing them (default: print them)")
    send.add_argument("--tls", action="store_true", help="connect over TLS (default: plaintext; implied by the other --tls-* options)")
    send.add_argument("--tls-ca-file", type=_pem_file(), metavar="PEM", help="CA that verifies the server's certificate (default: the system's trusted roots)")
    send.add_argument("--tls-cert-file", type=_pem_file(), metavar="PEM", help="client certificate for mutual TLS; needs --tls-key-file (default: none)")
    send.add_argument("--tls-key-file", type=_pem_file(key=True), metavar="PEM", help="private key of --tls-cert-file (default: none)")
    send.add_argument("--tls-server-name", metavar="NAME", help="name to check in the server's certificate (default: the address's host)")
    large = send.add_argument_group("files of any size", "upload_item with --data-file and get_item with --output move what one message cannot carry in parts, each checked by its SHA-256")
    large.add_argument(
        "--max-message-size",
        type=message_size,
        metavar="SIZE",
        help="largest message the binding takes (its max_message_size): a larger upload_item --data-file goes up in parts "
        "(default: 100MiB, KubeMQ's limit; a binding's smaller limit is learnt from its refusal)",
    )
    large.add_argument(
        "--part-size",
        type=part_size,
        metavar="SIZE",
        help="parts a large file goes up in, and ranges a large object comes down in, at least 5MiB (default: 16MiB, less when a message carries less, more to stay within S3's 10,000 parts)",
    )
    large.add_argument("--parallel", type=_count(1, 64), default=4, metavar="N", help="parts or ranges in flight at once (default: %(default)s; one at a time with --pattern queue)")
    large.add_argument("--upload-id", metavar="ID", help="continue this multipart upload of --data-file, sending only the parts it lacks (default: start a new upload)")
    large.add_argument("--keep-upload", action="store_true", help="keep the multipart upload when it fails for good, to inspect or continue it (default: abort it)")
    send.set_defaults(func=_send)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version(NAME)
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _env_option(parser: argparse.ArgumentParser, *flags: str, variable: str, fallback: str | None, text: str) -> None:
    """An option whose default comes from ``variable``; the help names the variable, never its value (it may be a secret)."""
    shown = fallback if fallback is not None else "none"
    parser.add_argument(*flags, default=os.environ.get(variable) or fallback, help=f"{text} (default: ${variable}, else {shown})")


def _pem_file(*, key: bool = False) -> Callable[[str], str]:
    """An argparse type that refuses a missing or non-PEM file with the same words as the config checks."""

    def checked(path: str) -> str:
        from bindings.kubemq.connection import check_pem_file

        try:
            return check_pem_file(path, key=key)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return checked


def _count(lowest: int, highest: int) -> Callable[[str], int]:
    """An argparse type for a whole number from ``lowest`` to ``highest``."""

    def checked(text: str) -> int:
        if not text.strip().isdigit() or not lowest <= int(text) <= highest:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from {lowest} to {highest}")
        return int(text)

    return checked


def _check_key_pair(args: argparse.Namespace) -> None:
    """Refuse --tls-cert-file and --tls-key-file that are not a pair."""
    from bindings.kubemq.connection import key_pair_problem

    problem = key_pair_problem(args.tls_cert_file, args.tls_key_file, ("--tls-cert-file", "--tls-key-file"))
    if problem:
        raise CommandError(problem, USAGE)


def _pattern(name: str) -> str:
    """``--pattern``: a source kind's pattern, or the singular spelling earlier versions took (``event``, ``event-store``), said so on stderr."""
    try:
        pattern = pattern_named(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if pattern != name:
        print(f"note: --pattern {name} is spelled {pattern} now, as its source kind; its default channel is {default_channel(pattern)}", file=sys.stderr)
    return pattern


def _registry() -> Registry:
    from connector.app import registry

    return registry()


def _run(args: argparse.Namespace) -> int:
    from bindings.runtime import Runtime

    try:
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            return runner.run(Runtime(args.config, _registry(), watch=args.watch).run())
    except ConfigError as exc:
        _print_problems(args.config, exc)
        return 1
    except IncompatibleLibrary as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the API port is taken, the embedded broker cannot bind ...
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (benchmarks/bench_requests.py measures the gain), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _validate(args: argparse.Namespace) -> int:
    from bindings.config import load_config

    try:
        config = load_config(args.config, _registry())
    except ConfigError as exc:
        _print_problems(args.config, exc)
        return 1
    print(f"{args.config}: valid ({len(config.bindings)} binding{'s' if len(config.bindings) != 1 else ''})")
    return 0


def _schema(_: argparse.Namespace) -> int:
    from bindings.schema import render_schema

    sys.stdout.write(render_schema(_registry()))
    return 0


def _docs(_: argparse.Namespace) -> int:
    from bindings.docs import reference

    sys.stdout.write(reference(_registry()))
    return 0


def _broker(args: argparse.Namespace) -> int:
    from bindings import logs
    from devbroker import serve_forever
    from devbroker.server import ServerTLS

    _check_key_pair(args)
    if args.tls_client_ca_file and not args.tls_cert_file:
        raise CommandError("--tls-client-ca-file needs the server's own --tls-cert-file and --tls-key-file", USAGE)
    client_ca = Path(args.tls_client_ca_file) if args.tls_client_ca_file else None
    tls = ServerTLS(Path(args.tls_cert_file), Path(args.tls_key_file), client_ca) if args.tls_cert_file else None
    logs.configure("info")
    try:
        asyncio.run(serve_forever(args.host, args.port, args.auth_token, tls))
    except RuntimeError as exc:
        if not str(exc).startswith(GRPC_BIND_FAILED):
            raise
        raise CommandError(f"cannot listen on {args.host}:{args.port}: the port is taken, or the address is not one of this machine's") from None
    return 0


def _send(args: argparse.Namespace) -> int:
    from bindings.kubemq.client import send_request
    from bindings.kubemq.connection import sdk_tls
    from bindings.kubemq.sdk import KUBEMQ_PARTS

    try:
        KUBEMQ_PARTS.check()  # send reaches the SDK's private parts too (large bodies, queue acks)
    except IncompatibleLibrary as exc:
        raise CommandError(str(exc), 1) from None
    _check_key_pair(args)
    metadata: dict[str, str] = {}
    for item in args.metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"metadata {item!r} is not KEY=VALUE", USAGE)
        metadata[key] = value
    if args.response_channel and args.pattern in ("query", "command"):
        raise CommandError(f"--response-channel is for queue, events and events-store; a {args.pattern} gets its reply directly", USAGE)
    channel = args.channel or default_channel(args.pattern)
    tls_options = (args.tls_ca_file or "", args.tls_cert_file or "", args.tls_key_file or "", args.tls_server_name or "")
    tls = sdk_tls(*tls_options) if args.tls or any(tls_options) else None
    moved = _move_file(args, metadata, channel, tls)
    if moved is not None:
        return moved
    data = _request_data(args)
    _check_output(args.output)
    return asyncio.run(
        send_request(
            args.address,
            channel,
            metadata,
            data,
            timeout=args.timeout,
            auth_token=args.auth_token,
            output=args.output,
            pattern=args.pattern,
            response_channel=args.response_channel,
            tls=tls,
            client_id=SEND_CLIENT_ID,
        )
    )


def _move_file(args: argparse.Namespace, metadata: dict[str, str], channel: str, tls: TLSConfig | None) -> int | None:
    """upload_item of a --data-file and get_item to an --output, which switch to parts when one message is too small; None otherwise."""
    from bindings.kubemq.client import Connection
    from bindings.limits import SERVER_MESSAGE_LIMIT
    from connector.files.command import Destination, download_file, upload_file
    from connector.files.plan import Options
    from connector.files.steps import TransferError

    method = metadata.get("method")
    uploads = method == "upload_item" and args.data_file is not None and args.data_file.is_file()
    downloads = method == "get_item" and args.output is not None and not metadata.get("range") and not metadata.get("decode")
    if (args.upload_id or args.keep_upload) and not uploads:
        raise CommandError("--upload-id and --keep-upload continue or keep an upload: they need -m method=upload_item and a --data-file", USAGE)
    if not uploads and not downloads:
        return None
    if downloads:
        _check_output(args.output)
    destination = Destination(Connection(args.address, args.auth_token, SEND_CLIENT_ID, tls), args.pattern, channel, args.timeout, args.response_channel)
    options = Options(args.part_size, args.parallel, args.max_message_size or SERVER_MESSAGE_LIMIT, args.upload_id, args.keep_upload)
    try:
        if uploads:
            return asyncio.run(upload_file(destination, metadata, args.data_file, options))
        return asyncio.run(download_file(destination, metadata, args.output, options))
    except TransferError as exc:
        raise CommandError(str(exc), exc.exit_code) from None


def _request_data(args: argparse.Namespace) -> bytes:
    if args.data_file is None:
        return args.data_text.encode() if args.data_text is not None else b""
    try:
        return args.data_file.read_bytes()  # type: ignore[no-any-return]
    except OSError as exc:
        raise CommandError(f"cannot read --data-file {args.data_file}: {exc.strerror or exc}") from None


def _check_output(path: Path | None) -> None:
    """Refuse an --output that cannot be written before sending: the request may be slow, or change something."""
    if path is None:
        return
    if path.is_dir():
        raise CommandError(f"cannot write --output {path}: it is a folder; name a file in it")
    folder = path.parent
    if not folder.is_dir():
        raise CommandError(f"cannot write --output {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CommandError(f"cannot write --output {path}: folder {folder} is not writable")


def _reload(args: argparse.Namespace) -> int:
    """SIGHUP the connector: a slim image has no ``kill`` binary, but it has this command."""
    try:
        os.kill(args.pid, signal.SIGHUP)
    except ProcessLookupError:
        raise CommandError(f"no process {args.pid}; pass the connector's process id with --pid") from None
    except PermissionError:
        raise CommandError(f"not allowed to signal process {args.pid}; run as the connector's user") from None
    print(f"sent SIGHUP to process {args.pid}: the connector reloads its config file and logs 'config reloaded' or why it refused")
    return 0


def _print_problems(path: str, exc: ConfigError) -> None:
    count = len(exc.problems)
    print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
