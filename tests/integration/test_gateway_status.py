"""`zhol gateway status` on a real gateway's files: exit codes and the facts it reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.bus_federation import get_person, start_federation
from tests.integration.test_bus import some_iin
from tests.waiting import until
from zhol.cli.demo import CONSUMER_GATEWAY, PROVIDER_GATEWAY
from zhol.cli.federation import POPULATION
from zhol.cli.main import main as zhol
from zhol.gateway.health import LOG_CLOSED

pytestmark = pytest.mark.asyncio


def errors(doc: dict) -> list[str]:
    return [f["code"] for f in doc["findings"] if f["severity"] == "error"]


def status(directory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    capsys.readouterr()
    code = zhol(["gateway", "status", "--dir", str(directory), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


async def test_status_of_a_working_gateway_and_of_broken_copies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = await start_federation(tmp_path / "fed", persons=5)
    try:
        await get_person(fed.is_address(), some_iin(fed))
        provider = fed.layout.gateway(PROVIDER_GATEWAY)
        code, doc = status(provider, capsys)
        assert code == 0 and doc["ok"] is True and doc["findings"] == []
        assert doc["health"] == {"running": True, "status": "SERVING", "reasons": []}
        assert doc["gateway"] == PROVIDER_GATEWAY
        assert doc["global_conf"]["state"] == "valid" and doc["global_conf"]["version"] >= 1
        assert POPULATION in doc["serves"]
        assert sorted(c["role"] for c in doc["certificates"]) == ["auth", "sign"]
        assert all(c["days_left"] > 300 for c in doc["certificates"])
        assert doc["message_log"]["records"] >= 2  # the request and the response
        assert doc["exposed_services"] >= 1
        assert zhol(["gateway", "status", "--dir", str(provider)]) == 0  # the text form

        # Copies of the consumer's directory, broken one way each (and not running).
        consumer = fed.layout.gateway(CONSUMER_GATEWAY)
        tampered = tmp_path / "tampered"
        shutil.copytree(consumer, tampered)
        conf_file = tampered / "globalconf.bin"
        conf_file.write_bytes(conf_file.read_bytes()[:-7] + b"forged!")
        code, doc = status(tampered, capsys)
        assert code == 1 and doc["ok"] is False
        assert errors(doc) == ["InvalidGlobalConf"]
        assert doc["health"]["running"] is False

        conf_file.unlink()
        code, doc = status(tampered, capsys)
        assert code == 1 and errors(doc) == ["NotConfigured"]

        # The provider's configuration does not register the consumer's certificate for it.
        swapped = tmp_path / "swapped"
        shutil.copytree(provider, swapped)
        shutil.copy(consumer / "keys" / "auth.pem", swapped / "keys" / "auth.pem")
        code, doc = status(swapped, capsys)
        assert code == 1 and "UntrustedPeer" in errors(doc)
    finally:
        await fed.stop()

    assert zhol(["gateway", "status", "--dir", str(tmp_path / "nowhere")]) == 3


async def test_status_reports_why_the_running_gateway_refuses_exchanges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = await start_federation(tmp_path / "fed", persons=5)
    provider = fed.layout.gateway(PROVIDER_GATEWAY)
    try:
        assert status(provider, capsys)[0] == 0
        # Its files are all fine; its message log takes no writes: health NOT_SERVING.
        fed.provider.message_log.close()
        await until(lambda: not fed.provider.health.current.serving, what="NOT_SERVING")
        code, doc = status(provider, capsys)
        assert code == 1 and doc["ok"] is False
        assert doc["health"] == {
            "running": True, "status": "NOT_SERVING", "reasons": [LOG_CLOSED],
        }  # fmt: skip
        assert errors(doc) == ["LoggingFailed"]
        capsys.readouterr()
        assert zhol(["gateway", "status", "--dir", str(provider)]) == 1
        text = capsys.readouterr().out
        assert f"NOT_SERVING ({LOG_CLOSED})" in text
        assert f"ERROR LoggingFailed: the gateway is NOT_SERVING: {LOG_CLOSED}" in text
    finally:
        await fed.stop()
    # Stopped: reported, a warning only (its files still say whether it could run).
    code, doc = status(provider, capsys)
    assert code == 0 and doc["health"]["running"] is False
    assert [(f["severity"], f["code"]) for f in doc["findings"]] == [("warning", "NotRunning")]
