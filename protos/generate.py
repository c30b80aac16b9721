"""Generate Python code for every .proto under protos/ (the one generator).

Generated modules import as their proto packages name them (``zhol.bus.v1.bus_pb2``,
``zhol.registry.v1.registry_pb2``). In a checkout they are written under ``zhol/``,
whose ``registry`` entry is the ``registry/`` folder, so the registry's protocol lives
in ``registry/v1/`` beside the server that speaks it. The build hook (``setup.py``)
runs the same function with the build directory as its output root.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent


def proto_sources() -> list[str]:
    """Every .proto file, relative to protos/ (its import path)."""
    return sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))


def generated_packages() -> list[str]:
    """The Python packages the generator fills, e.g. ``zhol.bus.v1`` (and their parents)."""
    packages: set[str] = set()
    for source in proto_sources():
        parts = source.split("/")[:-1]
        for end in range(1, len(parts) + 1):
            packages.add(".".join(parts[:end]))
    return sorted(packages)


def generate(out_root: Path = REPO_ROOT) -> int:
    """Run protoc on every source into ``out_root``; 0 on success."""
    from grpc_tools import protoc  # a build requirement, not a runtime one

    include = Path(protoc.__file__).resolve().parent / "_proto"
    sources = proto_sources()
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *sources,
    ]
    code = protoc.main(args)
    if code != 0:
        print("protoc failed", file=sys.stderr)
        return int(code)
    # Regular packages, so that tools without namespace support find them too.
    for package in generated_packages():
        init = out_root.joinpath(*package.split("."), "__init__.py")
        if not init.exists():
            init.touch()
    # Each .proto beside its generated code (package data, so in the wheel too): a Node.js
    # IS loads them at run time, and `zhol new-agency` copies them into what it writes.
    for source in sources:
        target = out_root / source
        if not target.exists() or target.read_bytes() != (PROTO_ROOT / source).read_bytes():
            shutil.copyfile(PROTO_ROOT / source, target)
    return 0


if __name__ == "__main__":
    sys.exit(generate())
