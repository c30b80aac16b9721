"""Build hook: the wheel and the sdist carry the code generated from protos/.

Everything else about the package is in pyproject.toml. The top-level folders
(``gateway/``, ``registry/``, ...) are the ``zhol.*`` subpackages through the
``zhol/`` folder's links to them; the generated ``zhol.<package>.v1`` modules are
written by ``protos/generate.py`` (grpcio-tools is a build requirement only).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.egg_info import egg_info
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("zhol_generate", ROOT / "protos" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


_generated = False


def _generate_in_tree() -> None:
    """Once per build, before any command lists or copies the package's files."""
    global _generated
    if not _generated:
        if GENERATOR.generate(ROOT) != 0:
            raise SystemExit("protos/generate.py failed")
        _generated = True


class EggInfoWithProtos(egg_info):
    def run(self) -> None:
        _generate_in_tree()
        super().run()


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        _generate_in_tree()
        super().run()


class SdistWithProtos(sdist):
    def run(self) -> None:
        _generate_in_tree()
        super().run()


packages = sorted(
    set(find_namespace_packages(include=["zhol", "zhol.*"]))
    | set(GENERATOR.generated_packages())
)

setup(
    packages=packages,
    cmdclass={
        "egg_info": EggInfoWithProtos,
        "build_py": BuildPyWithProtos,
        "sdist": SdistWithProtos,
    },
)
