"""gateway/healthfile.py: a running gateway's health as `zhol gateway status` reads it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from zhol.gateway.health import ConfHeld
from zhol.gateway.healthfile import HEALTH_FILE, HealthFile, read_health
from zhol.gateway.status import HealthFacts


def test_published_while_running_and_gone_once_stopped(tmp_path: Path) -> None:
    assert read_health(tmp_path) == HealthFacts(running=False)
    published = HealthFile(tmp_path)
    published.open()
    try:
        assert read_health(tmp_path) == HealthFacts(running=True)  # nothing published yet
        published.publish("NOT_SERVING", ("message-log-closed",), 1)
        assert read_health(tmp_path) == HealthFacts(True, "NOT_SERVING", ("message-log-closed",))
        published.publish("SERVING", (), 2)
        assert read_health(tmp_path) == HealthFacts(True, "SERVING")
    finally:
        published.close()
    assert read_health(tmp_path) == HealthFacts(running=False)
    assert not (tmp_path / HEALTH_FILE).exists()


def test_the_configuration_held_and_the_watch_are_published(tmp_path: Path) -> None:
    published = HealthFile(tmp_path)
    published.open()
    try:
        held = ConfHeld(watching=True, version=43, generated_at_ms=1_790_000_000_000)
        published.publish("SERVING", (), 1, held)
        assert read_health(tmp_path) == HealthFacts(True, "SERVING", (), held)
        published.publish("SERVING", (), 2, ConfHeld(None))  # no watch, no configuration
        assert read_health(tmp_path).held == ConfHeld(None, None, None)
        # A section not understood is no fact: status says it does not know.
        (tmp_path / HEALTH_FILE).write_text(
            '{"status": "SERVING", "reasons": [], "conf": {"watching": "yes", "version": 1}}'
        )
        assert read_health(tmp_path) == HealthFacts(True, "SERVING")
    finally:
        published.close()


def test_a_health_file_that_cannot_be_written_is_removed_not_left_stale(tmp_path: Path) -> None:
    published = HealthFile(tmp_path)
    published.open()
    try:
        published.publish("SERVING", (), 1)
        (tmp_path / HEALTH_FILE).with_suffix(".tmp").mkdir()  # every write now fails
        published.publish("NOT_SERVING", ("message-log-write-failed",), 2)
        assert not (tmp_path / HEALTH_FILE).exists()
        assert read_health(tmp_path) == HealthFacts(running=True)  # health unknown
    finally:
        published.close()


def test_a_killed_gateway_is_not_running(tmp_path: Path) -> None:
    code = (
        "import sys, pathlib; from zhol.gateway.healthfile import HealthFile; "
        "h = HealthFile(pathlib.Path(sys.argv[1])); h.open(); h.publish('SERVING', (), 1); "
        "print('ready', flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert read_health(tmp_path) == HealthFacts(True, "SERVING")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
    # The kernel released its lock; the health file it left says nothing any more.
    assert (tmp_path / HEALTH_FILE).exists()
    assert read_health(tmp_path) == HealthFacts(running=False)
