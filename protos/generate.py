"""Generate Python code for every .proto under protos/ into ./zhol (the one generator).

The output root is the repository root, so generated modules import as
``zhol.bus.v1.bus_pb2`` exactly as their proto packages name them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
OUT_ROOT = PROTO_ROOT.parent


def generate() -> int:
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = Path(protoc.__file__).resolve().parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={OUT_ROOT}",
        f"--pyi_out={OUT_ROOT}",
        f"--grpc_python_out={OUT_ROOT}",
        *sources,
    ]
    code = protoc.main(args)
    if code != 0:
        print("protoc failed", file=sys.stderr)
        return code
    # Regular packages so that tools without namespace support find them too.
    for directory in (OUT_ROOT / "zhol").rglob("*"):
        if directory.is_dir():
            (directory / "__init__.py").touch()
    (OUT_ROOT / "zhol" / "__init__.py").touch()
    return 0


if __name__ == "__main__":
    sys.exit(generate())
