"""Client authentication and TLS as a user meets them: real ``memnode serve`` processes,
real CLI processes. Refusals exit 1 naming which (unauthenticated / permission denied);
an unsafe start exits 2 with the reason; no process crashes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from federation.io.pki import CA_CERT, NODE_CERT, NODE_KEY, init_federation, issue_node

from helpers import NodeProcess, memnode_cmd, run_cli


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(memnode_cmd(*args), capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_token_issue_use_list_and_revoke(tmp_path: Path, procs: list[NodeProcess]) -> None:
    data = tmp_path / "node"
    proc = NodeProcess(data, ["--client-auth", "token"]).start()
    r = run_cli("token", "issue", "--data-dir", str(data), "--scope", "read", "--name", "bot")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("mnt1.") and "shown only now" in r.stderr

    r = run_cli("status", "--json", "--token", token, addr=proc.addr)
    assert r.returncode == 0, r.stderr
    r = cli("status", "--addr", proc.addr, MEMNODE_TOKEN=token)
    assert r.returncode == 0, r.stderr
    r = run_cli("status", addr=proc.addr)
    assert r.returncode == 1 and "unauthenticated: no token" in r.stderr, r.stderr
    r = run_cli("status", "--token", "not-a-token", addr=proc.addr)
    assert r.returncode == 1 and "malformed token" in r.stderr
    r = run_cli("remember", "x", "--token", token, addr=proc.addr)
    assert r.returncode == 1 and "permission denied" in r.stderr and "'write'" in r.stderr

    r = run_cli("token", "list", "--data-dir", str(data))
    assert r.returncode == 0 and "bot" in r.stdout and "live" in r.stdout
    assert token not in r.stdout
    token_id = r.stdout.split()[0]
    r = run_cli("token", "revoke", "--data-dir", str(data), token_id)
    assert r.returncode == 0, r.stderr
    r = run_cli("status", "--token", token, addr=proc.addr)
    assert r.returncode == 1 and "revoked" in r.stderr
    assert "revoked" in run_cli("token", "list", "--data-dir", str(data)).stdout
    assert proc.proc is not None and proc.proc.poll() is None  # still serving


def test_token_commands_refuse_bad_input(tmp_path: Path) -> None:
    r = run_cli("token", "issue", "--data-dir", str(tmp_path), "--scope", "root")
    assert r.returncode == 2 and "unknown scope root" in r.stderr
    r = run_cli("token", "issue", "--data-dir", str(tmp_path), "--scope", "read",
                "--ttl", "-5")
    assert r.returncode == 2 and "--ttl" in r.stderr
    r = run_cli("token", "revoke", "--data-dir", str(tmp_path), "nope")
    assert r.returncode == 4 and "no token 'nope'" in r.stderr


def test_off_loopback_without_authentication_refuses_to_start(
        tmp_path: Path, procs: list[NodeProcess]) -> None:
    r = run_cli("serve", "--data-dir", str(tmp_path / "a"), "--listen", "0.0.0.0:0",
                "--client-auth", "none", "--embedder", "test-hash")
    assert r.returncode == 2, r.stderr
    assert "not a loopback address" in r.stderr and "--allow-unauthenticated" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("serve", "--data-dir", str(tmp_path / "a"), "--listen", "0.0.0.0:0",
            "--embedder", "test-hash", MEMNODE_CLIENT_AUTH="none")
    assert r.returncode == 2 and "not a loopback address" in r.stderr

    allowed = NodeProcess(tmp_path / "b", ["--listen", "0.0.0.0:0", "--client-auth", "none",
                                           "--allow-unauthenticated"]).start()
    assert run_cli("status", addr=allowed.addr).returncode == 0
    assert allowed.terminate() == 0
    assert "anyone who reaches it reads and writes" in allowed.stderr()

    by_default = NodeProcess(tmp_path / "c", ["--listen", "0.0.0.0:0"]).start()
    r = run_cli("status", addr=by_default.addr)
    assert r.returncode == 1 and "unauthenticated" in r.stderr


def test_tls_from_the_command_line(tmp_path: Path, procs: list[NodeProcess]) -> None:
    init_federation(tmp_path / "ca")
    issue_node(tmp_path / "ca", "api", tmp_path / "api")
    api = tmp_path / "api"
    proc = NodeProcess(tmp_path / "node", ["--tls-cert", str(api / NODE_CERT),
                                           "--tls-key", str(api / NODE_KEY)]).start()
    r = run_cli("status", "--tls-ca", str(api / CA_CERT), addr=proc.addr)
    assert r.returncode == 0, r.stderr
    r = cli("status", "--addr", proc.addr, MEMNODE_TLS_CA=str(api / CA_CERT))
    assert r.returncode == 0, r.stderr
    r = run_cli("status", "--timeout", "5", addr=proc.addr)
    assert r.returncode == 3 and "if it serves TLS, pass --tls-ca" in r.stderr
    assert "Traceback" not in r.stderr
    assert run_cli("status", "--tls-ca", str(api / CA_CERT), addr=proc.addr).returncode == 0
