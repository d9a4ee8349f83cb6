"""The master key that wraps every memory's data key: a key that does not open the store
is refused at start with nothing written; a store from before encryption is refused
until it is backed up and restored, which encrypts it."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

import pytest

from helpers import NodeProcess, memnode_cmd, run_cli


def _sums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _key_file(path: Path) -> Path:
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    path.chmod(0o600)
    return path


def _serve(data: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    import subprocess

    result = subprocess.run(
        memnode_cmd("serve", "--data-dir", str(data), "--listen", "127.0.0.1:0",
                    "--embedder", "test-hash", "--sidecar", "off", *extra),
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})
    return result.returncode, result.stderr


def test_a_wrong_master_key_is_refused_and_the_data_dir_is_unchanged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "node"
    right, wrong = _key_file(tmp_path / "right.key"), _key_file(tmp_path / "wrong.key")
    proc = NodeProcess(data, ["--master-key-file", str(right), "--sidecar", "off"]).start()
    canary = f"canary-{secrets.token_hex(8)}"
    with proc.client() as c:
        mid = c.remember(f"{canary} kept under the right key", {"k": "v"}, privacy="private")
    assert proc.terminate() == 0
    assert not (data / "master.key").exists(), "a given key is not copied into the dir"
    before = _sums(data)

    code, err = _serve(data, "--master-key-file", str(wrong))
    assert code != 0 and "does not open the store" in err and "Traceback" not in err, err
    env_key = base64.b64encode(os.urandom(32)).decode()
    code, err = _serve(data, env={"MEMNODE_MASTER_KEY": env_key})
    assert code != 0 and "does not open the store" in err, err
    code, err = _serve(data)
    assert code != 0 and "no master key was given" in err, err
    assert _sums(data) == before, "a refused start must not write anything"

    monkeypatch.setenv("MEMNODE_MASTER_KEY", right.read_text().strip())  # the same key
    proc = NodeProcess(data, ["--sidecar", "off"]).start()
    with proc.client() as c:
        assert c.get(mid).text == f"{canary} kept under the right key"
        assert [h.id for h in c.recall("kept", where={"k": "v"})] == [mid]
    assert proc.terminate() == 0


def test_a_backup_of_a_node_keyed_elsewhere_restores_only_with_its_key(
        tmp_path: Path) -> None:
    data, right = tmp_path / "node", _key_file(tmp_path / "right.key")
    proc = NodeProcess(data, ["--master-key-file", str(right), "--sidecar", "off"]).start()
    canary = f"canary-{secrets.token_hex(8)}"
    with proc.client() as c:
        mid = c.remember(f"{canary} kept under the right key", privacy="private")
    assert proc.terminate() == 0
    bk, restored = tmp_path / "bk", tmp_path / "restored"
    done = run_cli("backup", str(bk), "--data-dir", str(data), "--quiet",
                   "--master-key-file", str(right))
    assert done.returncode == 0, done.stderr
    assert "master.key" not in {p.name for p in bk.iterdir()}
    refused = run_cli("restore", str(bk), "--data-dir", str(restored), "--quiet")
    assert refused.returncode != 0 and "no master key was given" in refused.stderr
    assert not restored.exists()
    done = run_cli("restore", str(bk), "--data-dir", str(restored), "--quiet",
                   "--master-key-file", str(right))
    assert done.returncode == 0, done.stderr
    proc = NodeProcess(restored, ["--master-key-file", str(right), "--sidecar", "off",
                                  "--restore-without-peers"]).start()
    with proc.client() as c:
        assert c.get(mid).text == f"{canary} kept under the right key"
    assert proc.terminate() == 0


def test_a_clear_store_is_refused_then_encrypted_by_backup_and_restore(
        tmp_path: Path) -> None:
    old = tmp_path / "old"
    proc = NodeProcess(old, ["--no-encrypt-at-rest", "--sidecar", "off"]).start()
    canary = f"canary-{secrets.token_hex(8)}"
    with proc.client() as c:
        mid = c.remember(f"{canary} written in clear", {"owner": "ann"}, privacy="private")
        public = c.remember("a public note", {"tag": f"{canary}-public"}, privacy="public")
        gone = c.remember("forgotten before the backup", privacy="private")
        c.forget(gone)
    assert proc.terminate() == 0
    assert any(canary.encode() in p.read_bytes() for p in old.rglob("*") if p.is_file())
    before = _sums(old)
    code, err = _serve(old)
    assert code != 0 and "without encryption at rest" in err and "memnode restore" in err, err
    assert _sums(old) == before

    done = run_cli("backup", str(tmp_path / "bk"), "--data-dir", str(old), "--quiet")
    assert done.returncode == 0, done.stderr
    new = tmp_path / "new"
    done = run_cli("restore", str(tmp_path / "bk"), "--data-dir", str(new), "--quiet")
    assert done.returncode == 0, done.stderr
    assert not [p for p in new.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()]
    assert (new / "master.key").stat().st_mode & 0o777 == 0o600
    proc = NodeProcess(new, ["--restore-without-peers", "--sidecar", "off"]).start()
    with proc.client() as c:
        assert c.get(mid).text == f"{canary} written in clear"
        assert [h.id for h in c.recall("written", where={"owner": "ann"})] == [mid]
        assert sorted(m.id for m in c.list()) == sorted([mid, public])
        assert c.get(public).metadata == {"tag": f"{canary}-public"}  # its event opens
    assert proc.terminate() == 0
