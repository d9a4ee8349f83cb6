"""``memnode watch`` as a user meets it: a real node process with token auth, real CLI
processes. It follows, stops at Ctrl-C telling where to resume, resumes from there
without repeating, ends with the node; bad input exits 2, refusals exit 1."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
from pathlib import Path

from helpers import NodeProcess, memnode_cmd, run_cli


class Lines:
    """A ``memnode watch`` process whose stdout lines are read with a deadline."""

    def __init__(self, addr: str, *args: str) -> None:
        self.proc = subprocess.Popen(memnode_cmd("watch", "--addr", addr, *args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def next_json(self, what: str) -> dict[str, object]:
        try:
            return dict(json.loads(self._lines.get(timeout=20)))
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no line from memnode watch: {what}\n"
                                 f"{self.proc.communicate()[1]}") from None

    def end(self, sig: signal.Signals | None = None) -> tuple[int, str]:
        if sig is not None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return self.proc.returncode, err


def _token(data: Path, scope: str) -> str:
    r = run_cli("token", "issue", "--data-dir", str(data), "--scope", scope)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_watch_follows_stops_resumes_and_ends_with_the_node(
        tmp_path: Path, procs: list[NodeProcess]) -> None:
    data = tmp_path / "node"
    node = NodeProcess(data, ["--client-auth", "token"]).start()
    rw, read = _token(data, "read,write"), _token(data, "read")

    r = run_cli("watch", addr=node.addr)
    assert r.returncode == 1 and "unauthenticated: no token" in r.stderr, r.stderr
    r = run_cli("watch", "--scope", "mesh", "--token", read, addr=node.addr)
    assert r.returncode == 1 and "permission denied" in r.stderr and "'admin'" in r.stderr

    for bad, says in (("nonsense", "--from expects ORIGIN=SEQ"),
                      ('{"a": ', "--from is not valid JSON"),
                      ("abc=-3", "--from expects ORIGIN=SEQ"),
                      ('{"x": 1}', "'x' is not a node id")):
        r = run_cli("watch", "--from", bad, "--token", read, addr=node.addr)
        assert r.returncode == 2 and says in r.stderr, (bad, r.stderr)
        assert "Traceback" not in r.stderr

    watch = Lines(node.addr, "--json", "--token", read)
    first = run_cli("remember", "the release train leaves at 10", "--meta", "team=web",
                    "--token", rw, addr=node.addr).stdout.strip()
    got = watch.next_json("the first memory")
    assert (got["kind"], got["id"], got["text"], got["metadata"]) == (
        "put", first, "the release train leaves at 10", {"team": "web"})
    admin = Lines(node.addr, "--json", "--scope", "mesh", "--token", _token(data, "admin"))
    assert admin.next_json("the mesh watch of an admin")["id"] == first
    assert admin.end(signal.SIGINT)[0] == 130
    code, err = watch.end(signal.SIGINT)
    assert code == 130 and "resume with --from" in err, err
    resume = err.split("--from '", 1)[1].split("'", 1)[0]
    assert json.loads(resume) == {got["origin"]: got["seq"]}

    second = run_cli("remember", "the train is late today", "--token", rw,
                     addr=node.addr).stdout.strip()
    resumed = Lines(node.addr, "--json", "--from", resume, "--token", read)
    got = resumed.next_json("the second memory, and not the first again")
    assert (got["kind"], got["id"]) == ("put", second)
    assert node.terminate() == 0  # the stream ends with the node, cleanly
    code, err = resumed.end()
    assert code == 0 and "the node closed the stream" in err, err
