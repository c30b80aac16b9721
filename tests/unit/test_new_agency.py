"""`zhol new-agency`: what the writer puts where, with every placeholder filled, and
every refusal (a catalogued code) writing nothing at all."""

from __future__ import annotations

import json
import py_compile
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from zhol.cli.contract import check_offer, compile_proto
from zhol.cli.main import build_parser, main
from zhol.cli.new_agency import agency_spec, render, substitute
from zhol.core.errors import ZholError
from zhol.gateway.subjects import subject_reader

ROOT = Path(__file__).resolve().parents[2]
MEMBER = "KZ/GOV/SRC"
COMMON = {"README.md", "join.sh", "taxes.proto"}
FILES = {
    "python": COMMON
    | {"provider.py", "client.py", "receiver.py", "publish.py", "taxes_pb2.py", "taxes_pb2_grpc.py"}
    | {"protos/zhol/bus/v1/options.proto"},
    "node": COMMON
    | {"provider.js", "client.js", "receiver.js", "publish.js", "common.js", "package.json"}
    | {
        "protos/zhol/bus/v1/options.proto",
        "protos/zhol/bus/v1/bus.proto",
        "protos/zhol/population/v1/population.proto",
    },
}


def scaffold(tmp_path: Path, *argv: str, lang: str = "python") -> tuple[int, Path]:
    out = tmp_path / "out"
    code = main(
        ["new-agency", "taxes", "--member", MEMBER, "--lang", lang, "--out", str(out), *argv]
    )
    return code, out


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("lang", ["python", "node"])
def test_it_writes_every_file_with_every_placeholder_filled(tmp_path: Path, lang: str) -> None:
    code, out = scaffold(tmp_path, lang=lang)
    assert code == 0
    assert files_under(out) == FILES[lang]
    for path in out.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text(), path
    assert (out / "join.sh").stat().st_mode & 0o111
    # Only the folder asked for: no staging folder is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    proto = (out / "taxes.proto").read_text()
    assert "package zhol.taxes.v1;" in proto and "service TaxesRegistry {" in proto
    join = (out / "join.sh").read_text()
    assert "MEMBER=${MEMBER:-KZ/GOV/SRC}" in join and "$MEMBER/gw1" in join
    assert "zhol.taxes.v1.TaxesRegistry=$PROVIDER_ADDRESS" in join
    assert "--topic zhol.taxes.v1.RecordUpdated" in join
    for relative in FILES[lang]:
        if relative.startswith("protos/"):  # the bus's own, unchanged
            assert (out / relative).read_bytes() == (ROOT / relative).read_bytes()


def test_the_contract_compiles_and_marks_the_iin_as_the_data_subject(tmp_path: Path) -> None:
    _, out = scaffold(tmp_path)
    contract = compile_proto(out / "taxes.proto")
    assert check_offer(contract, "zhol.taxes.v1.TaxesRegistry", ()) == ("GetRecord",)
    reader = subject_reader(contract, "zhol.taxes.v1.TaxesRegistry", "GetRecord")
    assert reader.marked == {"zhol.taxes.v1.GetRecordRequest": frozenset({"iin"})}


def test_options_name_the_service_and_gateway(tmp_path: Path) -> None:
    code, out = scaffold(tmp_path, "--service", "TaxRegistry", "--gateway-id", f"{MEMBER}/edge")
    assert code == 0
    assert "service TaxRegistry {" in (out / "taxes.proto").read_text()
    assert "add_TaxRegistryServicer_to_server" in (out / "provider.py").read_text()
    assert "$MEMBER/edge" in (out / "join.sh").read_text()


def test_the_default_service_name_is_the_camel_case_name() -> None:
    assert agency_spec("land_cadastre", MEMBER, "node").service == "LandCadastreRegistry"


def test_the_programs_are_valid_source(tmp_path: Path) -> None:
    _, py = scaffold(tmp_path / "py")
    for path in py.glob("*.py"):
        py_compile.compile(str(path), cfile=str(tmp_path / "check.pyc"), doraise=True)
    _, js = scaffold(tmp_path / "js", lang="node")
    for script in ("join.sh",):
        subprocess.run(["bash", "-n", str(py / script)], check=True)
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the .js files are not checked")
    for path in js.glob("*.js"):
        subprocess.run([node, "--check", str(path)], check=True)


def test_the_node_packages_are_the_node_example_s(tmp_path: Path) -> None:
    _, out = scaffold(tmp_path, lang="node")
    example = json.loads((ROOT / "examples" / "node" / "package.json").read_text())
    assert json.loads((out / "package.json").read_text())["dependencies"] == example["dependencies"]


def test_an_empty_existing_folder_is_written_into(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    code, out = scaffold(tmp_path)
    assert code == 0 and "taxes.proto" in files_under(out)


def test_the_default_folder_is_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new-agency", "taxes", "--member", MEMBER]) == 0
    assert (tmp_path / "taxes" / "provider.py").is_file()


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["Taxes", "--member", MEMBER], "Client.InvalidIdentifier"),
        (["9taxes", "--member", MEMBER], "Client.InvalidIdentifier"),
        (["tax-es", "--member", MEMBER], "Client.InvalidIdentifier"),
        (["t" * 41, "--member", MEMBER], "Client.InvalidIdentifier"),
        (["bus", "--member", MEMBER], "Client.InvalidIdentifier"),  # zhol.bus.v1 is ours
        (["taxes", "--member", "KZ/GOV"], "Client.InvalidIdentifier"),
        (["taxes", "--member", "KZ/GOV/S RC"], "Client.InvalidIdentifier"),
        (
            ["taxes", "--member", MEMBER, "--gateway-id", "KZ/GOV/MJ/gw1"],
            "Client.InvalidIdentifier",
        ),
        (["taxes", "--member", MEMBER, "--gateway-id", "gw1"], "Client.InvalidIdentifier"),
        (["taxes", "--member", MEMBER, "--service", "tax.Registry"], "Client.InvalidIdentifier"),
        (["taxes", "--member", MEMBER, "--service", "taxRegistry"], "Client.InvalidIdentifier"),
    ],
)
def test_bad_arguments_are_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: str
) -> None:
    out = tmp_path / "out"
    assert main(["new-agency", *argv, "--out", str(out)]) != 0
    assert capsys.readouterr().err.startswith(f"{code}:")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("existing", ["file", "folder"])
def test_an_existing_file_or_non_empty_folder_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], existing: str
) -> None:
    out = tmp_path / "out"
    if existing == "file":
        out.write_text("mine")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, _ = scaffold(tmp_path)
    assert code != 0
    assert capsys.readouterr().err.startswith("Client.OutputExists:")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ZholError) as caught:
        agency_spec("taxes", MEMBER, "cobol")
    assert caught.value.code.name == "InvalidRequest"
    with pytest.raises(SystemExit):
        main(["new-agency", "taxes", "--member", MEMBER, "--lang", "cobol"])


def test_an_unknown_placeholder_is_a_bug_not_silence() -> None:
    assert substitute("a {{name}} b", {"name": "x"}) == "a x b"
    with pytest.raises(KeyError):
        substitute("{{nmae}}", {"name": "x"})


def test_every_template_uses_only_known_placeholders() -> None:
    for lang in ("python", "node"):
        render(agency_spec("taxes", MEMBER, lang))  # raises KeyError otherwise


def test_help_says_what_it_writes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["new-agency", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for word in ("join.sh", "data_subject", "EventSink", "REGISTRY", "--out"):
        assert word in text, word


JOIN_VARIABLES = {
    "REGISTRY": "127.0.0.1:4400",
    "ANCHOR": "anchor.pem",
    "HERE": "/srv/taxes",
    "MEMBER": MEMBER,
    "MEMBER_NAME": "SRC",
    "SUBSYSTEM": f"{MEMBER}/taxes",
    "GATEWAY_ID": f"{MEMBER}/gw1",
    "GATEWAY_DIR": "gateway",
    "PEER_ADDRESS": "127.0.0.1:5601",
    "IS_LISTEN": "127.0.0.1:5600",
    "PROVIDER_ADDRESS": "127.0.0.1:7600",
    "RECEIVER_ADDRESS": "127.0.0.1:7601",
    "TIMEOUT": "60",
}


def test_every_zhol_command_of_join_sh_parses(tmp_path: Path) -> None:
    """A renamed flag fails here, not in a new member's first run of join.sh."""
    _, out = scaffold(tmp_path)
    script = (out / "join.sh").read_text().replace("\\\n", " ")
    commands = [
        line.strip().removeprefix("exec ")
        for line in script.splitlines()
        if line.strip().startswith(("$ZHOL ", "exec $ZHOL "))
    ]
    assert [c.split()[1:3] for c in commands] == [
        ["gateway", "init"],
        ["gateway", "add-subsystem"],
        ["events", "sink"],
        ["gateway", "serve"],
    ]
    parser = build_parser()
    for command in commands:
        command = command.replace('${PORT_FILE:+--port-file "$PORT_FILE"}', "--port-file p")
        for name, value in JOIN_VARIABLES.items():
            command = command.replace(f'"${name}"', value).replace(f"${name}", value)
        assert "$" not in command.removeprefix("$ZHOL"), command
        parser.parse_args(shlex.split(command)[1:])
