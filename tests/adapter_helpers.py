"""What the agency-adapter tests share: a provider's own refusal, population dates, and
the adapters' command lines (in-process, and `serve` as a real process)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import grpc
import pytest

from zhol.core.metadata import ERROR_KEY
from zhol.population.v1 import population_pb2

ROOT = Path(__file__).resolve().parents[1]


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    """The error a call ends with, answered by the provider itself (no zhol-error)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    error = caught.value
    trailers = {key for key, _value in (error.trailing_metadata() or ())}
    assert ERROR_KEY not in trailers, "the provider itself answers: no zhol-error trailer"
    return error


def date_pb(day: dt.date) -> population_pb2.Date:
    return population_pb2.Date(year=day.year, month=day.month, day=day.day)


def parse_adapter(cli: ModuleType, *argv: str) -> argparse.Namespace:
    """An adapter's commands under a bare parser, as cli/main.py registers them."""
    parser = argparse.ArgumentParser(prog="zhol adapter")
    cli.add_parser(parser.add_subparsers(dest="adapter", required=True))
    return parser.parse_args(list(argv))


_ENTRY = (
    "import argparse, importlib, sys\n"
    "cli = importlib.import_module(sys.argv[1])\n"
    "parser = argparse.ArgumentParser(prog='zhol adapter')\n"
    "cli.add_parser(parser.add_subparsers(dest='adapter', required=True))\n"
    "args = parser.parse_args(sys.argv[2:])\n"
    "sys.exit(args.func(args))\n"
)


@dataclass
class ServedAdapter:
    process: subprocess.Popen[str]
    port: int
    port_file: Path

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM, then its exit code and output."""
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=20)
        return self.process.returncode, out, err


@contextmanager
def serve_adapter(
    cli: ModuleType, agency: str, db: Path, directory: Path, extra: Sequence[str] = ()
) -> Iterator[ServedAdapter]:
    """`zhol adapter <agency> serve` as a real process on 127.0.0.1:0; killed if left."""
    port_file = directory / f"{agency}.port"
    config = directory / f"{agency}.toml"
    config.write_text('grace_seconds = 1.0\nlisten = "127.0.0.1:0"\n')
    prefix = f"ZHOL_{agency.upper()}_"
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
    process = subprocess.Popen(
        [sys.executable, "-c", _ENTRY, cli.__name__, agency, "serve", "--db", str(db),
         "--port-file", str(port_file), "--config", str(config), *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():  # a condition with a generous bound, not a guess
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no port file"
            time.sleep(0.05)
        yield ServedAdapter(process, int(port_file.read_text()), port_file)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
