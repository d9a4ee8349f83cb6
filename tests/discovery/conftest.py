"""Discovery tests: the netns lab helper (tests/netns/netlab.py) is importable as
``netlab``, and this folder's small programs (``_probe``, ``_dnsserver``) are run by path."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "netns"))
sys.path.insert(0, str(HERE))
