"""Fixtures of the agent integrations (MCP, LangChain): real nodes, as everywhere else.

The standard LangChain suite writes its async tests as bare ``async def`` methods and
expects pytest-asyncio's auto mode. Rather than switch the whole project to auto mode,
this hook marks only the coroutine tests collected under this directory as asyncio
tests (it runs innermost, before pytest-asyncio converts the marked items). The test
modules skip themselves when the ``agents`` extra (with pytest-asyncio) is absent.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> Generator[None, Any, None]:
    outcome = yield
    result = outcome.get_result()
    for item in result if isinstance(result, list) else [result]:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.add_marker(pytest.mark.asyncio)
