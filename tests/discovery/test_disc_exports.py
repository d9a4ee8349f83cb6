"""The package's public surface, its typing against the port, and its imports (nothing
from memnode: federation never imports the node)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import federation.io.discovery as discovery
from federation.io.discovery import (
    DnsDiscovery,
    StaticDiscovery,
    ZeroconfDiscovery,
    parse_discover,
)
from federation.ports import Discovery

SRC = Path(__file__).resolve().parents[2] / "src"


def test_all_names_every_public_member() -> None:
    public = {n for n in vars(discovery) if not n.startswith("_")}
    modules = {"dns", "mdns", "spec", "static"}  # submodules bound by the imports
    assert set(discovery.__all__) == public - modules
    for name in discovery.__all__:
        assert getattr(discovery, name) is not None


def test_every_adapter_satisfies_the_port() -> None:
    adapters: list[Discovery] = [  # mypy checks these against the Protocol
        StaticDiscovery(["10.0.0.2:7422"]),
        ZeroconfDiscovery(),
        DnsDiscovery("peers.example", 7422),
        parse_discover("dns:peers.example", 7422),
    ]
    assert [a.name for a in adapters] == ["static", "zeroconf", "dns:peers.example",
                                          "dns:peers.example"]
    for adapter in adapters:
        assert adapter.candidates() == frozenset()
        adapter.stop()


def test_it_imports_nothing_from_memnode() -> None:
    code = ("import sys, federation.io.discovery; "
            "bad = sorted(m for m in sys.modules if m == 'memnode' or m.startswith('memnode.')); "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC)}, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
