"""The layout carries the architecture: checked by folder, not by a hand-kept list.

- The replication core (``src/federation/*.py``) and the simulator
  (``src/federation/sim/``) do no I/O: they import no grpc, chromadb, asyncio, socket,
  threading, time, ... and nothing of the adapters in ``federation.io``.
- ``federation`` imports nothing from ``memnode`` (packages import in one direction).
- Every module imports on its own, with nothing of ours imported before it: no cycles.
- No module grows past the size where it should be split.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
FORBIDDEN_IN_CORE = {"grpc", "grpc_health", "grpc_reflection", "chromadb", "asyncio",
                     "socket", "threading", "time", "selectors", "subprocess",
                     "multiprocessing", "zeroconf", "google", "prometheus_client", "sqlite3",
                     "concurrent"}
MAX_LINES = 420


def _modules(package_dir: Path, *, recursive: bool = True) -> list[Path]:
    files = package_dir.rglob("*.py") if recursive else package_dir.glob("*.py")
    return sorted(p for p in files if "/v1/" not in p.as_posix())


def _dotted(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    """Every module an ``import`` or ``from ... import`` names, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use absolute imports"
            module = node.module or ""
            out.append(module)
            out += [f"{module}.{a.name}" for a in node.names]
    return out


CORE = _modules(SRC / "federation", recursive=False)
SIM = _modules(SRC / "federation" / "sim")


def test_the_folders_exist_as_designed() -> None:
    for folder in ("federation/io", "federation/sim", "memnode/node", "memnode/storage",
                   "memnode/api", "memnode/embedders", "memnode/cli", "memnode/integrations"):
        assert (SRC / folder / "__init__.py").is_file(), folder
    assert len(CORE) >= 15 and SIM


@pytest.mark.parametrize("path", CORE + SIM, ids=lambda p: _dotted(p))
def test_the_core_and_the_simulator_do_no_io(path: Path) -> None:
    for module in _imports(path):
        root = module.split(".")[0]
        assert root not in FORBIDDEN_IN_CORE, f"{_dotted(path)} imports {module}"
        assert not module.startswith(("federation.io", "federation.v1")), (
            f"{_dotted(path)} imports the adapter {module}")
        assert root != "memnode", f"{_dotted(path)} imports {module}"


@pytest.mark.parametrize("path", _modules(SRC / "federation"), ids=lambda p: _dotted(p))
def test_federation_imports_nothing_from_memnode(path: Path) -> None:
    bad = [m for m in _imports(path) if m.split(".")[0] == "memnode"]
    assert not bad, f"{_dotted(path)} imports {bad}"


def test_the_simulator_uses_only_the_core() -> None:
    for path in SIM:
        for module in _imports(path):
            if module.startswith("federation."):
                assert not module.startswith("federation.io"), (_dotted(path), module)


def test_every_module_imports_alone() -> None:
    """Each module imported with nothing of ours loaded before it (third-party modules
    stay loaded, which keeps this fast and does not hide a cycle of ours)."""
    names = [_dotted(p) for p in _modules(SRC / "federation") + _modules(SRC / "memnode")
             if p.name != "__main__.py"]
    script = (
        "import importlib, json, sys, traceback\n"
        "failed = {}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] in "
        "('memnode', 'federation')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed[name] = traceback.format_exc(limit=3)\n"
        "print(json.dumps(failed))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, json.dumps(names)],
                          capture_output=True, text=True, timeout=300, check=True)
    failed = json.loads(done.stdout.strip().splitlines()[-1])
    assert not failed, "\n".join(f"{k}:\n{v}" for k, v in failed.items())


@pytest.mark.parametrize("path", _modules(SRC / "federation") + _modules(SRC / "memnode"),
                         ids=lambda p: _dotted(p))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{_dotted(path)} has {lines} lines: split it by concern"
