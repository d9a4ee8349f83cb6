"""The MCP server, driven by the official SDK's own client against real nodes.

Each test spawns ``memnode mcp`` (``python -m memnode.cli mcp``) as a process, speaking
stdio (the SDK client starts it) or streamable HTTP (the test starts it on port 0 and
reads its ready line), in front of a real node on a real gRPC server.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the agents extra is not installed")
pytest.importorskip("pytest_asyncio", reason="the agents extra is not installed")

import mcp  # noqa: E402

from memnode import Client  # noqa: E402
from memnode.integrations import mcp_server  # noqa: E402
from memnode.storage.tokenstore import TokenStore  # noqa: E402

from helpers import ROOT, NodeHandle, wait_for  # noqa: E402

TOOLS = {"remember", "recall", "get", "forget", "status"}


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "ANONYMIZED_TELEMETRY": "False"}


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "memnode.cli", "mcp", *args]  # what agents run: `memnode mcp`


def stdio(addr: str, *extra: str) -> mcp.Client:
    params = mcp.StdioServerParameters(command=sys.executable,
                                       args=_cmd("--addr", addr, *extra)[1:], env=_env())
    return mcp.Client(params, read_timeout_seconds=30)


@contextmanager
def http_server(addr: str) -> Iterator[str]:
    """The server over streamable HTTP on a free port; yields its URL, kills it after."""
    proc = subprocess.Popen(_cmd("--addr", addr, "--http", "127.0.0.1:0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **_env()}, start_new_session=True)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:  # not select(): fds may be >= 1024
            sel.register(proc.stdout, selectors.EVENT_READ)
            ready = sel.select(60)
        line = proc.stdout.readline() if ready else ""
        assert line, f"no ready line from the MCP server (exit {proc.poll()})"
        yield str(json.loads(line)["mcp"])
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return " ".join(block.text for block in result.content)


async def test_stdio_tools_round_trip(node: NodeHandle) -> None:
    node_id = node.client.status().node_id
    async with stdio(node.addr) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert set(listed) == TOOLS
        assert all(len(t.description or "") > 60 for t in listed.values())
        assert listed["recall"].input_schema["required"] == ["query"]
        assert listed["recall"].input_schema["properties"]["scope"]["enum"] == ["local", "mesh"]
        assert listed["recall"].annotations is not None
        assert listed["recall"].annotations.read_only_hint is True

        made = data(await client.call_tool("remember", {
            "text": "the deploy key rotates on fridays",
            "metadata": {"team": "ops", "rank": 3, "urgent": True}, "privacy": "private"}))
        mid = made["id"]
        assert mid.startswith(node_id + "/") and made["replicated"] is False
        assert node.client.get(mid).metadata == {"team": "ops", "rank": 3, "urgent": True}

        found = data(await client.call_tool("recall", {"query": "deploy key fridays", "k": 3,
                                                       "where": {"urgent": True}}))
        assert [h["id"] for h in found["hits"]] == [mid]
        assert found["hits"][0]["text"] == "the deploy key rotates on fridays"
        assert -1.0 <= found["hits"][0]["score"] <= 1.0

        got = data(await client.call_tool("get", {"id": mid}))
        assert got["text"] == "the deploy key rotates on fridays" and got["local"] is True
        assert data(await client.call_tool("status", {}))["node_id"] == node_id

        assert data(await client.call_tool("forget", {"id": mid}))["forgotten"] is True
        assert "not found" in error_text(await client.call_tool("get", {"id": mid}))
        bad = error_text(await client.call_tool("recall", {"query": "x", "k": 0}))
        assert "k" in bad and "greater than or equal to 1" in bad
        nested = error_text(await client.call_tool(
            "remember", {"text": "t", "metadata": {"deep": {"no": 1}}}))
        assert "metadata" in nested
        assert "invalid argument" in error_text(await client.call_tool("get", {"id": "no-slash"}))


async def test_http_mesh_recall_names_the_origin_and_carries_no_text(
        node_factory) -> None:  # type: ignore[no-untyped-def]
    a: NodeHandle = node_factory("a", peers=[])
    assert a.sidecar is not None
    b: NodeHandle = node_factory("b", peers=[a.sidecar.address])
    mid = a.client.remember("the backup bucket lives in zurich", {"kind": "infra"})
    wait_for(lambda: b.client.status().memories["replicated"] == 1,
             "a's memory to replicate to b")
    origin = a.client.status().node_id
    with http_server(b.addr) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
        async with mcp.Client(url, read_timeout_seconds=30) as client:
            local = data(await client.call_tool("recall", {"query": "backup bucket zurich"}))
            assert local["hits"] == []
            mesh = data(await client.call_tool("recall", {"query": "backup bucket zurich",
                                                          "scope": "mesh",
                                                          "where": {"kind": "infra"}}))
            (hit,) = mesh["hits"]
            assert hit["id"] == mid and hit["origin"] == origin
            assert hit["local"] is False and hit["text"] is None
            assert origin in hit["text_location"]
            assert "never its text" in hit["text_location"]
            assert hit["metadata"]["kind"] != "infra"  # a team memory: a keyed hash
            got = data(await client.call_tool("get", {"id": mid}))
            assert got["text"] is None and got["origin"] == origin
            refused = error_text(await client.call_tool("forget", {"id": mid}))
            assert "refused" in refused and "origin" in refused
    assert a.client.get(mid).text == "the backup bucket lives in zurich"


async def test_node_down_is_a_tool_error_and_the_server_keeps_answering(
        node: NodeHandle) -> None:
    addr, node_id = node.addr, node.client.status().node_id
    async with stdio(addr) as client:
        assert data(await client.call_tool("status", {}))["node_id"] == node_id
        node.stop()
        started = time.monotonic()
        down = error_text(await client.call_tool("recall", {"query": "anything"}))
        assert "unavailable" in down and addr in down and "memnode serve" in down
        assert time.monotonic() - started < 20  # the client's deadline, not a hang
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        assert "unavailable" in error_text(await client.call_tool("status", {}))


def test_http_off_loopback_needs_an_explicit_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert mcp_server.main(["--http", "0.0.0.0:0"]) == 2
    assert "--allow-unauthenticated" in capsys.readouterr().err
    assert mcp_server.main(["--http", "no-port"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    assert mcp_server.main(["--bogus"]) == 2


async def test_the_token_reaches_a_node_with_token_auth(
        node_factory, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    secured: NodeHandle = node_factory("secured", client_auth="token")
    store = TokenStore(secured.data_dir)
    token, _ = store.issue(frozenset({"read", "write"}), secured.node.now_ms())
    read_only, _ = store.issue(frozenset({"read"}), secured.node.now_ms())
    async with stdio(secured.addr, "--token", token) as client:
        made = data(await client.call_tool("remember", {"text": "tokens reach the node"}))
        assert data(await client.call_tool("get", {"id": made["id"]}))["text"] == \
            "tokens reach the node"
        assert data(await client.call_tool("status", {}))["node_id"] == secured.node.node_id
    async with stdio(secured.addr) as client:
        assert "not authenticated" in error_text(await client.call_tool("status", {}))
    async with stdio(secured.addr, "--token", read_only) as client:
        denied = error_text(await client.call_tool("remember", {"text": "no"}))
        assert "not allowed" in denied and "'write'" in denied
    with caplog.at_level(logging.DEBUG, logger="memnode.mcp"), \
            mcp_server.make_client("127.0.0.1:1", "s3cret", 1.0) as made_client:
        assert isinstance(made_client, Client) and made_client.addr == "127.0.0.1:1"
    assert all("s3cret" not in r.getMessage() for r in caplog.records)
