"""``kubemq-s3`` as an operator runs it: validate, schema, send's mistakes, reload, --version and --help.

Every mistake ends in one line on stderr (a timeout adds a hint) and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bindings.config import parse_config
from bindings.errors import InvalidRequestError
from bindings.schema import render_schema
from bindings.wire import EXTENDED, Request
from connector.app import registry
from connector.cli import _parser
from connector.s3 import METHODS, S3Target
from devbroker import EmbeddedBroker
from tests.fixtures.kubemq import free_port
from tests.ops.support import REPO

SHIPPED_SCHEMA = REPO / "config.schema.json"
BROKEN = """\
apiPort: 8080
bindings:
  - name: s3
    source:
      kind: kubemq.query
      properties:
        address: "kubemq-cluster-grpc.kubemq:50000"
        channel: "query aws"
    target:
      kind: aws.s3
      properties:
        aws_key: "AKIAEXAMPLE"
        aws_secret_key: ["wJalr-NOT-SHOWN"]
        region: "us-east-1"
        endpoint: "ftp://nowhere"
    properties:
      retry_attempts: "0"
"""


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connector", *args], cwd=REPO, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


async def cli_async(*args: str) -> tuple[int, str, str]:
    """The command line while this test's event loop keeps serving the session broker."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "connector", *args, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a mistake prints on stderr (with nothing on stdout, and no traceback)."""
    assert "Traceback" not in result.stderr and result.stdout == "", result.stderr
    [line] = result.stderr.splitlines()
    return line


def test_validate_lists_every_problem_with_its_line_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(BROKEN)
    result = cli("validate", "-c", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}: 4 problems",
        "  line 8: bindings[0].source.properties.channel: Value error, no white spaces are allowed (binding 's3')",
        "  line 13: bindings[0].target.properties.aws_secret_key: invalid value (hidden: secret) (binding 's3')",
        "  line 15: bindings[0].target.properties.endpoint: Value error, must be an http(s) URL such as http://127.0.0.1:9000, or the word 'embedded' (binding 's3')",
        "  line 17: bindings[0].properties.retry_attempts: Input should be greater than or equal to 1 (binding 's3')",
    ]
    assert "wJalr-NOT-SHOWN" not in result.stderr


def test_validate_reads_kubemq_s3_config_and_says_valid(tmp_path: Path) -> None:
    path = tmp_path / "fixed.yaml"
    fixed = BROKEN.replace("query aws", "query.aws").replace('["wJalr-NOT-SHOWN"]', '"${S3_SECRET}"').replace("ftp://nowhere", "http://minio:9000").replace('"0"', '"3"')
    path.write_text(fixed)
    result = cli("validate", env={"KUBEMQ_S3_CONFIG": str(path), "S3_SECRET": "from-the-environment"})
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{path}: valid (1 binding)\n", "")


def test_unreadable_config_is_one_clear_problem(tmp_path: Path) -> None:
    result = cli("validate", "-c", str(tmp_path / "missing.yaml"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[1].startswith(f"  cannot read config file '{tmp_path / 'missing.yaml'}'")


def test_the_shipped_schema_is_the_generated_one() -> None:
    """Regenerate with `make schema` (kubemq-s3 schema > config.schema.json) after changing a declaration."""
    assert SHIPPED_SCHEMA.read_text() == render_schema(registry())
    printed = cli("schema")
    assert (printed.returncode, printed.stdout) == (0, SHIPPED_SCHEMA.read_text())


def shipped_configs() -> list[Path]:
    configs = [REPO / "config.yaml", *sorted((REPO / "deploy").glob("*/*.yaml"))]
    return [path for path in configs if path.parent.name != "k8s"]


def configmap_config() -> str:
    documents = yaml.safe_load_all((REPO / "deploy/k8s/configmap.yaml").read_text())
    return next(doc for doc in documents if doc and doc["kind"] == "ConfigMap")["data"]["config.yaml"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", [str(path.relative_to(REPO)) for path in shipped_configs()] + ["deploy/k8s/configmap.yaml#config.yaml"])
def test_shipped_configs_match_the_schema_and_pass_validate(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (add it to the `test` extra)")
    text = configmap_config() if name.endswith("#config.yaml") else (REPO / name).read_text()
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_ACCESS_KEY", "S3_SECRET_KEY", "POD_NAME", "AWS_REGION"):
        monkeypatch.setenv(variable, "stand-in")
    jsonschema.validate(yaml.safe_load(text), json.loads(SHIPPED_SCHEMA.read_text()))
    resolved = parse_config(text, registry())
    declared = yaml.safe_load(text).get("bindings") or []
    assert [binding.name for binding in resolved.bindings] == [binding["name"] for binding in declared]


def test_the_schema_rejects_what_validate_rejects() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (add it to the `test` extra)")
    schema = json.loads(SHIPPED_SCHEMA.read_text())
    errors = sorted(str(e.message) for e in jsonschema.Draft7Validator(schema).iter_errors(yaml.safe_load(BROKEN.replace("retry_attempts", "retry_atempts"))))
    assert any("retry_atempts" in error for error in errors)


# validate: every problem, sorted by line, with a suggestion where a name is close ------------------------------------

MISTAKES = """\
apiPort: "eighty"
bindings:
  - name: s3
    source:
      kind: kubemq.qeury
      properties:
        address: "localhost:50000"
        channel: "query.aws.s3"
    target:
      kind: aws.s33
  - name: s3-second
    source:
      kind: kubemq.query
      properties:
        address: "localhost:50000"
        channel: "query.aws.s3.second"
    target:
      kind: aws.s3
      properties:
        regoin: "us-east-1"
        verify_ssl: "maybe"
    properties:
      retry_atempts: "3"
logLevel: loud
"""


def test_validate_lists_top_level_and_binding_problems_together_sorted_by_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MISTAKES)
    result = cli("validate", "-c", str(path))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        f"{path}: 7 problems",
        "  line 1: apiPort: Input should be a valid integer, unable to parse string as an integer",
        f"  line 5: bindings[0].source.kind: invalid kind 'kubemq.qeury' for source; did you mean 'kubemq.query'? valid kinds: {', '.join(registry().source_kinds())} (binding 's3')",
        f"  line 10: bindings[0].target.kind: invalid kind 'aws.s33' for target; did you mean 'aws.s3'? valid kinds: {', '.join(registry().targets)} (binding 's3')",
        f"  line 20: bindings[1].target.properties.regoin: unknown property; did you mean 'region'? valid properties: {', '.join(S3Target.properties_model.model_fields)} (binding 's3-second')",
        "  line 21: bindings[1].target.properties.verify_ssl: invalid boolean; accepted values: true, false, 1, 0, yes, no, on, off, t, f, y, n (any letter case) (binding 's3-second')",
        "  line 23: bindings[1].properties.retry_atempts: unknown property; did you mean 'retry_attempts'? valid properties: log_level, "
        "retry_attempts, retry_delay_milliseconds, retry_max_jitter_milliseconds, retry_max_delay_milliseconds, retry_delay_type, reply_style, rate_per_second "
        "(binding 's3-second')",
        "  line 24: logLevel: Input should be 'debug', 'info', 'warning' or 'error'",
    ]


def test_an_unknown_key_inside_a_binding_lists_that_blocks_keys_with_the_closest(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MISTAKES.replace("      kind: aws.s33", "      kindd: aws.s3"))
    problems = cli("validate", "-c", str(path)).stderr.splitlines()
    assert "  line 10: bindings[0].target.kindd: unknown key; did you mean 'kind'? valid keys: kind, name, properties" in problems


def test_a_misspelled_method_keeps_kubemq_targets_words_and_adds_the_closest() -> None:
    """The aws.s3 method table in the extended style: kubemq-targets' text first (senders match it), the suggestion after it."""
    listed = "invalid method type, method type should be one of the following: " + ", ".join(method.name for method in METHODS)
    for sent, closest in [("list-buckets", "list_buckets"), ("GET_ITEM", "get_item"), ("uplod_item", "upload_item")]:
        with pytest.raises(InvalidRequestError) as refused:
            METHODS.resolve(Request(metadata={"method": sent}), style=EXTENDED)
        assert str(refused.value) == f"{listed}; did you mean {closest!r}?"
    with pytest.raises(InvalidRequestError) as unlike:
        METHODS.resolve(Request(metadata={"method": "frobnicate"}), style=EXTENDED)
    assert str(unlike.value) == listed


def test_a_misspelled_method_in_the_default_style_gets_exactly_kubemq_targets_text() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        METHODS.resolve(Request(metadata={"method": "uplod_item"}))
    nine = ("list_buckets", "list_bucket_items", "create_bucket", "delete_bucket", "upload_item", "get_item", "delete_item_from_bucket", "delete_all_items_from_bucket", "copy_item")
    assert str(refused.value) == "invalid method type, method type should be one of the following:" + "".join(f" :{name}," for name in nine)


def test_a_request_boolean_that_is_not_one_lists_the_accepted_values() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        METHODS.resolve(Request(metadata={"method": "delete_bucket", "bucket_name": "b", "force": "sure"}))
    assert str(refused.value) == "error parsing force, invalid boolean; accepted values: true, false, 1, 0, yes, no, on, off, t, f, y, n (any letter case)"


# send: mistakes are one line ---------------------------------------------------------------------------------------


def test_send_refuses_a_data_file_it_cannot_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.bin"
    result = cli("send", "-m", "method=upload_item", "--data-file", str(missing))
    assert (result.returncode, one_line(result)) == (1, f"error: cannot read --data-file {missing}: No such file or directory")
    result = cli("send", "-m", "method=upload_item", "--data-file", str(tmp_path))
    assert (result.returncode, one_line(result)) == (1, f"error: cannot read --data-file {tmp_path}: Is a directory")


def test_send_refuses_an_output_it_cannot_write_before_sending(tmp_path: Path) -> None:
    # Nothing listens at the address: reaching it would be a different error, so the check came first.
    nowhere = f"127.0.0.1:{free_port()}"
    target = tmp_path / "no-such-folder" / "object.bin"
    result = cli("send", "--address", nowhere, "-m", "method=get_item", "--output", str(target))
    assert (result.returncode, one_line(result)) == (1, f"error: cannot write --output {target}: folder {target.parent} does not exist")
    result = cli("send", "--address", nowhere, "-m", "method=get_item", "--output", str(tmp_path))
    assert (result.returncode, one_line(result)) == (1, f"error: cannot write --output {tmp_path}: it is a folder; name a file in it")


def test_send_to_an_unreachable_broker_names_the_address() -> None:
    address = f"127.0.0.1:{free_port()}"
    result = cli("send", "--address", address, "-m", "method=list_buckets")
    line = one_line(result)
    # 2: nothing came back (docs/sources.md); the reason after the address is gRPC's.
    assert result.returncode == 2
    assert line.startswith(f"error: cannot reach KubeMQ at {address}: ") and line.endswith("Connection refused"), line


async def test_a_send_nobody_answers_names_address_and_channel_and_hints_at_the_subscriber(broker: EmbeddedBroker) -> None:
    code, stdout, stderr = await cli_async("send", "--address", broker.address, "--channel", "query.nobody.listens", "--timeout", "1", "-m", "method=list_buckets")
    assert (code, stdout) == (2, "")
    assert stderr.splitlines() == [
        f"error: no reply from query.nobody.listens at {broker.address} within 1s",
        "hint: is a connector subscribed to query.nobody.listens? KubeMQ answers a request that nothing subscribes to only with this "
        "timeout; check the binding's channel and kind, or raise --timeout for a slow operation",
    ]


async def test_a_closed_pipe_ends_send_quietly(broker: EmbeddedBroker) -> None:
    """`kubemq-s3 send ... | head -c1`: the reader is gone before the result is printed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        args = ("send", "--address", broker.address, "--pattern", "events", "--channel", "events.pipe.closed", "-m", "method=list_buckets")
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "connector", *args, cwd=REPO, stdout=write_end, stderr=asyncio.subprocess.PIPE)
    finally:
        os.close(write_end)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert (process.returncode, stderr.decode()) == (1, "")


def test_a_closed_pipe_ends_any_command_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "connector", "schema"], cwd=REPO, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (1, "")


# reload, --version, --help -----------------------------------------------------------------------------------------

RECORDS_SIGHUP = """\
import pathlib, signal, sys, time
record = pathlib.Path(sys.argv[1])
signal.signal(signal.SIGHUP, lambda *_: record.write_text("SIGHUP"))
print("ready", flush=True)
deadline = time.monotonic() + 30
while not record.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
"""


def test_reload_sends_sighup_to_the_given_process(tmp_path: Path) -> None:
    record = tmp_path / "received"
    child = subprocess.Popen([sys.executable, "-c", RECORDS_SIGHUP, str(record)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        result = cli("reload", "--pid", str(child.pid))
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout.startswith(f"sent SIGHUP to process {child.pid}")
        assert child.wait(timeout=30) == 0
        assert record.read_text() == "SIGHUP"
    finally:
        child.kill()
        child.wait()


def test_reload_of_a_process_that_is_gone_is_one_line() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    result = cli("reload", "--pid", str(gone.pid))
    assert (result.returncode, one_line(result)) == (1, f"error: no process {gone.pid}; pass the connector's process id with --pid")


def test_version_comes_from_the_package_metadata() -> None:
    result = cli("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"kubemq-s3 {importlib.metadata.version('kubemq-s3')}\n", "")


def test_help_shows_defaults_and_environment_variables_never_their_values() -> None:
    wide = {"COLUMNS": "1000", "KUBEMQ_AUTH_TOKEN": "s3cr3t-token"}
    send = cli("send", "--help", env=wide).stdout
    for shown in [
        "KubeMQ gRPC host:port (default: $KUBEMQ_ADDRESS, else localhost:50000)",
        "token to present to KubeMQ (default: $KUBEMQ_AUTH_TOKEN, else none)",
        "seconds to wait for the reply or response (default: 30)",
        "channel to send to (default: <pattern>.aws.s3, e.g. query.aws.s3)",
    ]:
        assert shown in send
    assert "s3cr3t-token" not in send
    assert "config file (default: $KUBEMQ_S3_CONFIG, else config.yaml)" in cli("validate", "--help", env=wide).stdout
    assert "process id of the connector (default: 1, the connector in its container)" in cli("reload", "--help", env=wide).stdout


def test_every_option_says_its_default() -> None:
    parser = _parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    undocumented = [
        f"{name} {action.option_strings[-1]}"
        for name, command in commands.choices.items()
        for action in command._actions
        if action.option_strings and action.dest != "help" and "default" not in (action.help or "")
    ]
    assert undocumented == []
