"""Generate the Python protobuf and gRPC modules from proto/ (never edit them by hand).

    python scripts/genproto.py            # write into src/
    python scripts/genproto.py --out DIR  # write elsewhere (the staleness test compares)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"


def generate(out: Path) -> list[Path]:
    from grpc_tools import protoc

    protos = sorted(p.relative_to(PROTO).as_posix() for p in PROTO.rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = []
    for proto in protos:
        package_dir = out / Path(proto).parent
        init = package_dir / "__init__.py"
        init.write_text('"""Generated from proto/ by scripts/genproto.py. Do not edit."""\n')
        stem = Path(proto).stem
        suffixes = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
        written += [init] + [package_dir / f"{stem}{s}" for s in suffixes]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "src")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path.relative_to(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
