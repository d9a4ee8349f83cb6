"""Shared fixtures: real nodes on real gRPC servers (port 0) over real Chroma in temp dirs."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "federation"))  # fedkit: signed events for any test

from helpers import STARTED, NodeHandle, NodeProcess, start_node  # noqa: E402


@pytest.fixture(scope="session")
def hash_embedder():  # type: ignore[no-untyped-def]
    from memnode.embedders import HashEmbedder

    return HashEmbedder()


@pytest.fixture
def node_factory(tmp_path: Path, hash_embedder) -> Iterator[Callable[..., NodeHandle]]:  # type: ignore[no-untyped-def]
    handles: list[NodeHandle] = []

    def make(name: str = "n1", embedder=None, **config) -> NodeHandle:  # type: ignore[no-untyped-def]
        handle = start_node(tmp_path / name, embedder or hash_embedder, **config)
        handles.append(handle)
        return handle

    yield make
    for handle in handles:
        handle.stop()


@pytest.fixture
def node(node_factory) -> NodeHandle:  # type: ignore[no-untyped-def]
    return node_factory()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """A failed test's report carries the end of each node process's log."""
    report = yield
    if report.failed:
        for proc in STARTED:
            report.sections.append((f"log of {proc.data_dir.name}", proc.stderr()[-4000:]))
    return report


@pytest.fixture(autouse=True)
def _no_leftover_node_processes() -> Iterator[None]:
    """Whatever happens in a test, the node processes it started are killed after it."""
    yield
    while STARTED:
        STARTED.pop().kill()


@pytest.fixture
def procs() -> list[NodeProcess]:
    """A list to keep a test's node processes in (all are killed after the test)."""
    return []
