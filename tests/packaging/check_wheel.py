"""The packaging check in `make test`: what a packager and a new user do.

1. Copy the tracked files (as a fresh clone has them: no generated code) to a
   scratch folder and build the sdist and, from it, the wheel with ``python -m build``.
2. Check the wheel: one top-level package (``zhol``), the generated protocol code,
   ``py.typed``, every tracked conformance case file (package data); the sdist: the
   generated code and the protos it came from.
3. Install the wheel into a new virtual environment (dependencies pinned by
   constraints.txt) and, from an empty folder, run ``zhol demo --check``,
   ``zhol conformance --help``, ``zhol new-agency`` for both languages, and
   ``zhol conformance`` against a ``zhol demo``
   federation started from the installed wheel (what an agency developer who
   pip-installed zhol does: no source checkout, no tests/ to import).

Exit 0 when all of it holds; otherwise the failing step and exit 1. Needs the
package index, as ``make setup`` does; everything else stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The conformance cases are package data (pyproject.toml): every tracked one ships.
CASES = "cli/conformance_cases"
DEMO_READY = "zhol demo ready"
DEMO_START_TIMEOUT_S = 120
REQUIRED_IN_WHEEL = (
    "zhol/__init__.py",
    "zhol/py.typed",
    "zhol/bus/v1/bus_pb2.py",
    "zhol/bus/v1/bus_pb2_grpc.py",
    "zhol/bus/v1/options_pb2.py",  # the data_subject option the registries import
    "zhol/registry/v1/registry_pb2.py",
    "zhol/gateway/pipeline.py",
    "zhol/cli/main.py",
    # `zhol new-agency`: its templates, and the bus's .proto files it copies.
    "zhol/cli/scaffold/common/join.sh.tmpl",
    "zhol/cli/scaffold/python/provider.py.tmpl",
    "zhol/cli/scaffold/node/provider.js.tmpl",
    "zhol/bus/v1/bus.proto",
    "zhol/bus/v1/options.proto",
    "zhol/population/v1/population.proto",
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


def tracked_case_files() -> list[str]:
    """The conformance case files as the wheel must hold them (zhol/cli/...)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--", f"{CASES}/*.toml"], cwd=ROOT, check=True,
        capture_output=True,
    ).stdout
    return [f"zhol/{p}" for p in listing.decode().split("\0") if p]


def check_wheel(wheel: Path) -> list[str]:
    problems = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    extra = sorted(t for t in top_level if t != "zhol" and not t.endswith(".dist-info"))
    if extra:
        problems.append(f"wheel installs more than zhol: {extra}")
    cases = tracked_case_files()
    if not cases:
        problems.append(f"no tracked case files in {CASES}/")
    problems += [
        f"wheel lacks {name}" for name in (*REQUIRED_IN_WHEEL, *cases) if name not in names
    ]
    return problems


def check_sdist(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    needed = ("zhol/bus/v1/bus_pb2.py", "zhol/registry/v1/registry_pb2.py",
              "protos/zhol/bus/v1/bus.proto", "protos/generate.py", "setup.py", "LICENSE",
              "constraints.txt", "docs/protocol.md", "tests/vectors/request_seal.json",
              "deploy/zhol-gateway.service")
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
        zhol = venv / "bin" / "zhol"
        version = subprocess.run([zhol, "--version"], cwd=empty, check=True,
                                 capture_output=True, text=True).stdout.strip()
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        expected = f"zhol {project['version']}"
        if version != expected:
            print(f"FAIL: the installed zhol --version says {version!r}, not {expected!r}")
            return 1
        run([zhol, "demo", "--check"], cwd=empty)
        run([zhol, "conformance", "--help"], cwd=empty)
        for lang in ("python", "node"):
            out = base / f"new-agency-{lang}"
            run([zhol, "new-agency", "taxes", "--member", "KZ/GOV/SRC", "--lang", lang,
                 "--out", out], cwd=empty)
            wanted = (out / "join.sh", out / "protos" / "zhol" / "bus" / "v1" / "options.proto")
            if not all(path.is_file() for path in wanted):
                print(f"FAIL: zhol new-agency --lang {lang} wrote no join.sh or options.proto")
                return 1
        if not conformance_against_demo(zhol, base / "demo", empty):
            return 1
        leftovers = sorted(p.name for p in empty.iterdir())
        if leftovers:
            print(f"FAIL: zhol demo --check or zhol conformance left files in their working "
                  f"folder: {leftovers}")
            return 1
    print("wheel check: OK (one top-level package, generated code, conformance cases; "
          "demo --check and conformance against a demo federation from an empty folder)")
    return 0


def conformance_against_demo(zhol: Path, data_dir: Path, cwd: Path) -> bool:
    """Start `zhol demo` from the installed wheel, run `zhol conformance` against it (the
    shipped cases: every IS-facing one must pass), and stop the demo with SIGINT."""
    log = data_dir.with_suffix(".log")
    args = [str(zhol), "demo", "--data-dir", str(data_dir), "--persons", "200"]
    print("+", *args, "&", flush=True)
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    started = time.monotonic()
    try:
        if not wait_for_demo(demo, log):
            print(f"FAIL: zhol demo did not get ready; its output:\n{log.read_text()}")
            return False
        run([zhol, "conformance", "--federation", data_dir / "federation.json"], cwd=cwd)
        return True
    finally:
        stop_demo(demo, log)
        print(f"zhol demo exited {demo.returncode} after {time.monotonic() - started:.1f} s",
              flush=True)


def wait_for_demo(demo: subprocess.Popen[bytes], log: Path) -> bool:
    deadline = time.monotonic() + DEMO_START_TIMEOUT_S
    while time.monotonic() < deadline and demo.poll() is None:
        if DEMO_READY in log.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def stop_demo(demo: subprocess.Popen[bytes], log: Path) -> None:
    """SIGINT, as Ctrl-C: the demo stops its components. Should it hang, kill it and the
    components its ready line named (each runs in a session of its own)."""
    if demo.poll() is not None:
        return  # it stopped its components on its way out
    demo.send_signal(signal.SIGINT)
    try:
        demo.wait(30)
        return
    except subprocess.TimeoutExpired:
        print("zhol demo did not stop on SIGINT within 30 s: killing it and its components")
        demo.kill()
        demo.wait()
    ready = next((line for line in log.read_text(errors="replace").splitlines()
                  if DEMO_READY in line and "(pids: " in line), "")
    for item in ready.split("(pids: ", 1)[-1].rstrip(")").split(", ") if ready else ():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(item.rpartition("=")[2]), signal.SIGTERM)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as failed:
        print(f"FAIL: {failed.cmd} exited {failed.returncode}")
        sys.exit(1)
