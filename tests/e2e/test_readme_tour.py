"""The README's tour and the examples of docs/methods.md work when pasted, against a connector started as a newcomer starts it.

The connector is ``python -m connector run -c <config>``, where the config is the repository's ``config.yaml``
with two changes: ``apiPort`` and ``embeddedBrokerPort`` set to free ports (its ``apiHost: 127.0.0.1`` already
keeps the API on this machine). So it starts its own embedded broker and its own embedded SeaweedFS, exactly
as ``make run`` does.

Every ``kubemq-s3 send`` line of the document is run in order as a separate process, with ``kubemq-s3`` replaced
by ``<this python> -m connector`` and ``--address 127.0.0.1:<port>`` added (the last ``--address`` wins, so
lines that name ``localhost:50000`` reach this connector too). The lines run in a scratch directory holding a
copy of ``config.yaml`` (one example uploads it; another writes ``--output`` there, not into the repository),
with the repository on ``PYTHONPATH`` as an installed ``kubemq-s3`` would be.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.e2e.support import http, newcomer_connector, stop_with_sigterm
from tests.ops.support import REPO

Check = Callable[[dict[str, Any], Path], Awaitable[None]]


def send_lines(markdown: str, heading: str | None = None) -> list[str]:
    """The ``kubemq-s3 send`` lines of the document's ``sh`` blocks (only those under ``heading``, if given), in order."""
    if heading is not None:
        markdown = markdown.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```", markdown, re.S | re.M)
    return [line for block in blocks for line in block.splitlines() if line.startswith("kubemq-s3 send")]


async def run_lines(lines: list[str], address: str, checks: dict[str, Check], workdir: Path) -> None:
    """Run each line as pasted (see the module docstring); assert exit 0, ``is_error: false`` and the line's check."""
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert set(checks) <= set(lines), f"checked lines no longer in the document: {set(checks) - set(lines)}"
    for line in lines:
        argv = shlex.split(line)
        command = [sys.executable, "-m", "connector", *argv[1:], "--address", address]
        done = await asyncio.to_thread(subprocess.run, command, cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{line}\nexit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        shown = json.loads(done.stdout)
        assert shown["is_error"] is False and shown["metadata"]["result"] == "ok", f"{line}\n{done.stdout}"
        if line in checks:
            await checks[line](shown, workdir)


def expect_url_serves(status: int, body: bytes | None = None, upload: bytes | None = None) -> Check:
    """The presigned URL, used at once (as a reader pasting it into curl would), answers ``status`` (and ``body``)."""

    async def check(shown: dict[str, Any], _: Path) -> None:
        signed = shown["data"]
        got_status, got_body = await http(signed["method"], signed["url"], upload, signed.get("headers"))
        assert got_status == status and (body is None or got_body == body), (got_status, got_body)

    return check


def expect(predicate: Callable[[dict[str, Any]], bool]) -> Check:
    """The printed reply (``metadata``, ``data`` decoded) satisfies ``predicate``."""

    async def check(shown: dict[str, Any], _: Path) -> None:
        assert predicate(shown), shown

    return check


def keys(shown: dict[str, Any]) -> list[str]:
    return [item["Key"] for item in shown["data"]["Contents"] or []]


TOUR = "kubemq-s3 send -m method="
TOUR_CHECKS: dict[str, Check] = {
    f"{TOUR}create_bucket -m bucket_name=demo": expect(lambda s: s["data"] == {"Location": "/demo"}),
    f"{TOUR}get_item -m bucket_name=demo -m item_name=hello.txt": expect(lambda s: s["data"] == "hello world"),
    f"{TOUR}get_item -m bucket_name=demo -m item_name=report.json -m decode=auto": expect(lambda s: s["data"] == {"json": {"total": 3}}),
    f"{TOUR}head_item -m bucket_name=demo -m item_name=report.json": expect(lambda s: (s["data"]["ContentType"], s["data"]["ContentLength"]) == ("application/json", 12)),
    f"{TOUR}list_bucket_items -m bucket_name=demo": expect(lambda s: keys(s) == ["hello.txt", "report.json"]),
    f"{TOUR}list_bucket_items -m bucket_name=demo -m search=rep -m max_keys=10": expect(lambda s: keys(s) == ["report.json"]),
    f"{TOUR}presign_url -m bucket_name=demo -m item_name=hello.txt -m expires_seconds=600": expect_url_serves(200, b"hello world"),
    # The shipped config answers as kubemq-targets does: no count (reply_style: extended adds it).
    f"{TOUR}delete_all_items_from_bucket -m bucket_name=demo": expect(lambda s: (s["data"], s["metadata"]) == (None, {"result": "ok"})),
}


async def test_the_readme_tour_works_when_pasted(tmp_path: Path) -> None:
    lines = send_lines((REPO / "README.md").read_text(), "## A tour")
    assert len(lines) == 14 and any("method=presign_url" in line for line in lines)
    async with newcomer_connector(tmp_path) as (child, address):
        await run_lines(lines, address, TOUR_CHECKS, tmp_path)
        await stop_with_sigterm(child)


DOCS = "kubemq-s3 send --address localhost:50000 --channel query.aws.s3 -m method="


async def first_two_bytes(_: dict[str, Any], workdir: Path) -> None:
    assert (workdir / "first-two-bytes.bin").read_bytes() == b"he"


DOCS_CHECKS: dict[str, Check] = {
    f"{DOCS}upload_item -m bucket_name=demo -m file_name=config.yaml -m content_type=application/yaml -m meta_owner=ops --data-file config.yaml": expect(
        lambda s: s["data"]["Location"].endswith("/demo/config.yaml")
    ),
    f"{DOCS}get_item -m bucket_name=demo -m item_name=hello.txt": expect(lambda s: s["data"] == "hello"),
    f"{DOCS}get_item -m bucket_name=demo -m item_name=hello.txt -m decode=auto": expect(lambda s: s["data"] == {"text": "hello"}),
    f"{DOCS}get_item -m bucket_name=demo -m item_name=hello.txt -m range=bytes=0-1 --output first-two-bytes.bin": first_two_bytes,
    f"{DOCS}delete_all_items_from_bucket -m bucket_name=demo -m prefix=tmp/": expect(lambda s: s["data"] is None),
    f"{DOCS}copy_item -m bucket_name=demo -m item_name=hello.json -m source_item=hello.txt -m content_type=application/json": expect(lambda s: bool(s["data"]["CopyObjectResult"]["ETag"])),
    f"{DOCS}head_item -m bucket_name=demo -m item_name=hello.txt": expect(lambda s: s["data"]["ContentLength"] == 5),
    f"{DOCS}presign_url -m bucket_name=demo -m item_name=hello.txt -m expires_seconds=3600": expect_url_serves(200, b"hello"),
    f"{DOCS}presign_url -m bucket_name=demo -m item_name=upload.png -m operation=put -m content_type=image/png": expect_url_serves(200, upload=b"\x89PNG"),
    f"{DOCS}get_item_tags -m bucket_name=demo -m item_name=signed.txt": expect(lambda s: s["metadata"]["tags"] == "team=billing,year=2024"),
    f'{DOCS}delete_items -m bucket_name=demo --data-text \'["tmp/a.txt", "tmp/b.txt", "never-existed.txt"]\'': expect(
        lambda s: s["data"]["Deleted"] == ["tmp/a.txt", "tmp/b.txt", "never-existed.txt"] and s["data"]["Errors"] == []
    ),
}


async def test_the_methods_reference_examples_run_in_order(tmp_path: Path) -> None:
    lines = send_lines((REPO / "docs" / "methods.md").read_text())
    assert len(lines) == 27
    async with newcomer_connector(tmp_path) as (child, address):
        await run_lines(lines, address, DOCS_CHECKS, tmp_path)
        await stop_with_sigterm(child)
