from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import NodeProcess


@pytest.fixture
def procs() -> Iterator[list[NodeProcess]]:
    """Processes a test starts; killed at the end whatever happened."""
    started: list[NodeProcess] = []
    yield started
    for proc in started:
        proc.kill()


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
