"""The ``kubemq-s3`` command line: run, validate, schema, broker, send."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from bindings.errors import ConfigError

DEFAULT_CONFIG = os.environ.get("KUBEMQ_S3_CONFIG", "config.yaml")


def main(argv: list[str] | None = None) -> int:
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
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubemq-s3", description="KubeMQ <-> S3 connector, wire-compatible with kubemq-targets' aws.s3 target.")
    commands = parser.add_subparsers(title="commands")

    run = commands.add_parser("run", help="run the connector")
    run.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s, or $KUBEMQ_S3_CONFIG)")
    run.add_argument("--no-watch", dest="watch", action="store_false", help="do not reload when the config file changes (SIGHUP still reloads)")
    run.set_defaults(func=_run)

    validate = commands.add_parser("validate", help="check a config file and list every problem with its line")
    validate.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    validate.set_defaults(func=_validate)

    schema = commands.add_parser("schema", help="print the JSON Schema of config.yaml")
    schema.set_defaults(func=_schema)

    docs = commands.add_parser("docs", help="print the configuration and method reference (Markdown)")
    docs.set_defaults(func=_docs)

    broker = commands.add_parser("broker", help="run the embedded KubeMQ-compatible development broker")
    broker.add_argument("--host", default="127.0.0.1")
    broker.add_argument("--port", type=int, default=50000)
    broker.add_argument("--auth-token", default=os.environ.get("KUBEMQ_AUTH_TOKEN") or None, help="require this token (default: $KUBEMQ_AUTH_TOKEN, none)")
    broker.add_argument("--tls-cert-file", type=_pem_file(), metavar="PEM", help="serve TLS with this certificate (default: plaintext); needs --tls-key-file")
    broker.add_argument("--tls-key-file", type=_pem_file(key=True), metavar="PEM", help="private key of --tls-cert-file")
    broker.add_argument("--tls-client-ca-file", type=_pem_file(), metavar="PEM", help="require client certificates signed by this CA (mutual TLS)")
    broker.set_defaults(func=_broker)

    send = commands.add_parser("send", help="send one kubemq-targets request with the official SDK, in any pattern, and print the result")
    send.add_argument("--address", default=os.environ.get("KUBEMQ_ADDRESS", "localhost:50000"))
    send.add_argument("--pattern", choices=("query", "command", "queue", "event", "event-store"), default="query", help="query and command wait for the reply; queue, event and event-store print the send result (default: %(default)s)")
    send.add_argument("--channel", help="channel to send to (default: <pattern>.aws.s3)")
    send.add_argument("--response-channel", help="queue/event/event-store: wait for the response published on this channel and print it")
    send.add_argument("-m", "--metadata", action="append", default=[], metavar="KEY=VALUE", help="request metadata, repeatable")
    data = send.add_mutually_exclusive_group()
    data.add_argument("--data-file", type=Path, help="file whose bytes are the request data")
    data.add_argument("--data-text", help="text that is the request data")
    send.add_argument("--timeout", type=int, default=30, help="seconds to wait for the reply or response")
    send.add_argument("--auth-token", default=os.environ.get("KUBEMQ_AUTH_TOKEN") or None)
    send.add_argument("--output", type=Path, help="write the reply's data bytes to this file instead of printing them")
    send.add_argument("--tls", action="store_true", help="connect over TLS (implied by the other --tls-* options)")
    send.add_argument("--tls-ca-file", type=_pem_file(), metavar="PEM", help="CA that verifies the server's certificate (default: the system's trusted roots)")
    send.add_argument("--tls-cert-file", type=_pem_file(), metavar="PEM", help="client certificate for mutual TLS; needs --tls-key-file")
    send.add_argument("--tls-key-file", type=_pem_file(key=True), metavar="PEM", help="private key of --tls-cert-file")
    send.add_argument("--tls-server-name", metavar="NAME", help="name to check in the server's certificate instead of the address's host")
    send.set_defaults(func=_send)
    return parser


def _pem_file(*, key: bool = False) -> Callable[[str], str]:
    """An argparse type that refuses a missing or non-PEM file with the same words as the config checks."""

    def checked(path: str) -> str:
        from bindings.sources.connection import check_pem_file

        try:
            return check_pem_file(path, key=key)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return checked


def _key_pair_refused(args: argparse.Namespace) -> bool:
    """Whether --tls-cert-file and --tls-key-file are not a pair (and if so, say why)."""
    from bindings.sources.connection import key_pair_problem

    problem = key_pair_problem(args.tls_cert_file, args.tls_key_file, ("--tls-cert-file", "--tls-key-file"))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    return problem is not None


def _registry():  # type: ignore[no-untyped-def]
    from connector.app import registry

    return registry()


def _run(args: argparse.Namespace) -> int:
    from bindings.runtime import Runtime

    try:
        return asyncio.run(Runtime(args.config, _registry(), watch=args.watch).run())
    except ConfigError as exc:
        _print_problems(args.config, exc)
        return 1
    except OSError as exc:  # the API port is taken, the embedded broker cannot bind ...
        print(f"error: {exc}", file=sys.stderr)
        return 1


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
    from bindings.broker import serve_forever
    from bindings.broker.server import ServerTLS

    if _key_pair_refused(args):
        return 2
    if args.tls_client_ca_file and not args.tls_cert_file:
        print("error: --tls-client-ca-file needs the server's own --tls-cert-file and --tls-key-file", file=sys.stderr)
        return 2
    client_ca = Path(args.tls_client_ca_file) if args.tls_client_ca_file else None
    tls = ServerTLS(Path(args.tls_cert_file), Path(args.tls_key_file), client_ca) if args.tls_cert_file else None
    logs.configure("info")
    asyncio.run(serve_forever(args.host, args.port, args.auth_token, tls))
    return 0


def _send(args: argparse.Namespace) -> int:
    from bindings.client import send_request
    from bindings.sources.connection import sdk_tls

    if _key_pair_refused(args):
        return 2
    metadata: dict[str, str] = {}
    for item in args.metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: metadata {item!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        metadata[key] = value
    if args.response_channel and args.pattern in ("query", "command"):
        print(f"error: --response-channel is for queue, event and event-store; a {args.pattern} gets its reply directly", file=sys.stderr)
        return 2
    data = args.data_file.read_bytes() if args.data_file else (args.data_text.encode() if args.data_text is not None else b"")
    channel = args.channel or f"{args.pattern}.aws.s3"
    tls_options = (args.tls_ca_file or "", args.tls_cert_file or "", args.tls_key_file or "", args.tls_server_name or "")
    tls = sdk_tls(*tls_options) if args.tls or any(tls_options) else None
    return asyncio.run(
        send_request(
            args.address, channel, metadata, data, timeout=args.timeout, auth_token=args.auth_token, output=args.output, pattern=args.pattern, response_channel=args.response_channel, tls=tls
        )
    )


def _print_problems(path: str, exc: ConfigError) -> None:
    count = len(exc.problems)
    print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
