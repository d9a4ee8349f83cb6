"""The memnode CLI as a user runs it: real processes against a real node."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import NodeHandle, run_cli


def test_remember_prints_the_id_and_recall_finds_it(node: NodeHandle) -> None:
    r = run_cli("remember", "the office wifi password rotates monthly", "--meta", "topic=it",
                "--meta", "floor=3", addr=node.addr)
    assert r.returncode == 0, r.stderr
    mid = r.stdout.strip()
    assert mid.startswith(node.node.node_id + "/")
    assert node.client.get(mid).metadata == {"topic": "it", "floor": 3}
    r = run_cli("recall", "wifi password", "--json", "--where", "floor=3", addr=node.addr)
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    assert hits[0]["id"] == mid and hits[0]["text"].startswith("the office wifi")
    r = run_cli("recall", "wifi password", addr=node.addr)
    assert "the office wifi password" in r.stdout


def test_get_forget_and_not_found(node: NodeHandle) -> None:
    mid = node.client.remember("forget me later")
    r = run_cli("get", mid, "--json", addr=node.addr)
    assert json.loads(r.stdout)["text"] == "forget me later"
    assert run_cli("forget", mid, addr=node.addr).returncode == 0
    r = run_cli("get", mid, addr=node.addr)
    assert r.returncode == 4 and "not found" in r.stderr


def test_status_json_has_the_documented_fields(node: NodeHandle) -> None:
    node.client.remember("one", privacy="public")
    r = run_cli("status", "--json", addr=node.addr)
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["node_id"] == node.node.node_id
    assert set(status["model"]) == {"name", "dim", "fingerprint"}
    assert status["memories"]["local"] == 1 and status["memories"]["replicated"] == 0
    assert status["version_vector"] == {node.node.node_id: 1}
    assert status["peers"] == []


def test_bad_input_exits_nonzero_with_a_message(node: NodeHandle) -> None:
    r = run_cli("remember", "", addr=node.addr)
    assert r.returncode == 2 and "empty" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("remember", "x", "--meta", "novalue", addr=node.addr)
    assert r.returncode == 2 and "KEY=VALUE" in r.stderr
    r = run_cli("remember", "x", "--privacy", "secret", addr=node.addr)
    assert r.returncode == 2
    r = run_cli("get", "not-an-id", addr=node.addr)
    assert r.returncode == 2 and "memory id" in r.stderr
    # undecodable bytes on the command line are refused by the client, as the node would
    proc = subprocess.run([sys.executable, "-m", "memnode.cli.main", "remember", b"caf\xe9"],
                          capture_output=True, text=True,
                          env={**__import__("os").environ, "MEMNODE_ADDR": node.addr})
    assert proc.returncode == 2 and "UTF-8" in proc.stderr
    assert node.client.status().memories["local"] == 0


def test_unreachable_node_exits_3() -> None:
    r = run_cli("status", "--addr", "127.0.0.1:1", "--timeout", "2")
    assert r.returncode == 3 and "cannot reach" in r.stderr


def test_import_and_export_round_trip(node: NodeHandle, tmp_path: Path) -> None:
    lines = [json.dumps({"text": f"imported fact {i}", "metadata": {"i": i}})
             for i in range(300)]
    lines.append(json.dumps({"text": "a private one", "privacy": "private"}))
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    r = run_cli("import", str(src), "--batch", "64", addr=node.addr)
    assert r.returncode == 0, r.stderr
    assert "imported 301 memories" in r.stderr
    out = tmp_path / "out.jsonl"
    r = run_cli("export", "--out", str(out), addr=node.addr)
    assert r.returncode == 0, r.stderr
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(exported) == 301
    assert {e["text"] for e in exported} == {json.loads(x)["text"] for x in lines}
    assert {e["privacy"] for e in exported} == {"team", "private"}
    # an export imports again as it is
    r = run_cli("import", str(out), "--quiet", addr=node.addr)
    assert r.returncode == 0 and node.client.status().memories["local"] == 602


@pytest.mark.parametrize("content, words", [
    ('{"text": "ok"}\nnot json\n', "in.jsonl:2: not JSON"),
    ('{"text": "ok", "metadata": {"a": {"b": 1}}}\n', "flat object"),
    ('{"txt": "typo"}\n', '"text" string'),
])
def test_import_checks_the_whole_file_before_sending(node: NodeHandle, tmp_path: Path,
                                                     content: str, words: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(content)
    r = run_cli("import", str(src), addr=node.addr)
    assert r.returncode == 2 and words in r.stderr
    assert node.client.status().memories["local"] == 0


def test_client_commands_import_no_heavy_libraries(node: NodeHandle) -> None:
    code = (
        "import sys\n"
        "from memnode.cli.main import main\n"
        f"rc = main(['recall', 'anything', '--addr', '{node.addr}'])\n"
        "heavy = [m for m in ('chromadb', 'torch', 'sentence_transformers', 'onnxruntime',"
        " 'numpy', 'pydantic') if m in sys.modules]\n"
        "print(rc, heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "0 []", r.stdout + r.stderr
