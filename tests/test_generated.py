"""Generated protobuf code is current, and the public API is exported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "genproto.py"), "--out",
                    str(tmp_path)], check=True, capture_output=True)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert generated, "genproto wrote nothing"
    stale = [str(rel) for rel in generated
             if not (ROOT / "src" / rel).exists()
             or (ROOT / "src" / rel).read_bytes() != (tmp_path / rel).read_bytes()]
    assert not stale, f"stale generated code, run `make proto`: {stale}"


def test_public_api_is_exported() -> None:
    import types

    import memnode

    public = {name for name, value in vars(memnode).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert public == set(memnode.__all__) - {"__version__"}
    for name in memnode.__all__:
        assert hasattr(memnode, name)
