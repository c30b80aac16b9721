"""The packaging check in `make test`: what a packager and a new user do.

1. Copy the tracked files (as a fresh clone has them: no generated code) to a
   scratch folder and build the sdist and, from it, the wheel with ``python -m build``.
2. Check the wheel: one top-level package (``zhol``), the generated protocol code,
   ``py.typed``; the sdist: the generated code and the protos it came from.
3. Install the wheel into a new virtual environment (dependencies pinned by
   constraints.txt) and run ``zhol demo --check`` from an empty folder.

Exit 0 when all of it holds; otherwise the failing step and exit 1. Needs the
package index, as ``make setup`` does; everything else stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_IN_WHEEL = (
    "zhol/__init__.py",
    "zhol/py.typed",
    "zhol/bus/v1/bus_pb2.py",
    "zhol/bus/v1/bus_pb2_grpc.py",
    "zhol/registry/v1/registry_pb2.py",
    "zhol/gateway/pipeline.py",
    "zhol/cli/main.py",
)


def run(args: list[str | Path], cwd: Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=cwd, check=True)


def copy_tracked_files(destination: Path) -> None:
    """The working tree's tracked files, links kept as links: a fresh clone."""
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    # A tracked file deleted in the working tree is not part of it.
    paths = [p for p in listing.decode().split("\0") if p and os.path.lexists(ROOT / p)]
    subprocess.run(
        ["cp", "--parents", "--no-dereference", "--", *paths, str(destination)],
        cwd=ROOT,
        check=True,
    )


def check_wheel(wheel: Path) -> list[str]:
    problems = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    extra = sorted(t for t in top_level if t != "zhol" and not t.endswith(".dist-info"))
    if extra:
        problems.append(f"wheel installs more than zhol: {extra}")
    problems += [f"wheel lacks {name}" for name in REQUIRED_IN_WHEEL if name not in names]
    return problems


def check_sdist(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    needed = ("zhol/bus/v1/bus_pb2.py", "zhol/registry/v1/registry_pb2.py",
              "protos/zhol/bus/v1/bus.proto", "protos/generate.py", "setup.py", "LICENSE")
    return [f"sdist lacks {name}" for name in needed if name not in names]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="zhol-wheel-check-") as scratch:
        base = Path(scratch)
        source, dist, venv, empty = (base / n for n in ("source", "dist", "venv", "empty"))
        for folder in (source, empty):
            folder.mkdir()
        copy_tracked_files(source)
        run([sys.executable, "-m", "build", "--outdir", dist, source], cwd=base)
        wheels, sdists = sorted(dist.glob("zhol-*.whl")), sorted(dist.glob("zhol-*.tar.gz"))
        if len(wheels) != 1 or len(sdists) != 1:
            print(f"FAIL: expected one wheel and one sdist, got {wheels + sdists}")
            return 1
        problems = check_wheel(wheels[0]) + check_sdist(sdists[0])
        if problems:
            print("FAIL:", *problems, sep="\n  ")
            return 1
        run([sys.executable, "-m", "venv", venv], cwd=base)
        pip = venv / "bin" / "pip"
        run([pip, "install", "--quiet", "-c", ROOT / "constraints.txt", wheels[0]], cwd=base)
        run([venv / "bin" / "zhol", "demo", "--check"], cwd=empty)
        leftovers = sorted(p.name for p in empty.iterdir())
        if leftovers:
            print(f"FAIL: zhol demo --check left files in its working folder: {leftovers}")
            return 1
    print("wheel check: OK (one top-level package, generated code, demo --check from an "
          "empty folder)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as failed:
        print(f"FAIL: {failed.cmd} exited {failed.returncode}")
        sys.exit(1)
