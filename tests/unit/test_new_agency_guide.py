"""docs/new-agency.md says what exists: every `zhol` command it writes parses as written
(a renamed flag fails here, not for the next agency developer), its contract compiles
into a descriptor set declaring the method it publishes, and its Python files compile."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.new_agency_guide import BLOCK, GUIDE, blocks, files, guide
from zhol.cli.contract import check_offer, compile_proto
from zhol.cli.main import build_parser

# The shell variables the guide sets, as values of the right shape.
VARIABLES = {
    "$REGISTRY": "127.0.0.1:4400",
    "$ANCHOR": "anchor.pem",
    "$IIN": "000101600018",
    '"$ME"': "'zhol-client: KZ/GOV/SRC/taxes'",
}


def zhol_commands() -> list[str]:
    """Each `zhol ...` command line of the sh blocks (continuations joined, comments
    dropped), and each `zhol ...` code span of the prose."""
    commands = []
    for body in blocks("sh"):
        for line in body.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("# or: "):
                line = line.removeprefix("# or: ")
            if line.startswith("zhol "):
                commands.append(line)
    prose = BLOCK.sub("", guide())
    commands += [" ".join(span.split()) for span in re.findall(r"`(zhol [^`]+)`", prose)]
    return commands


def test_the_guide_writes_zhol_commands() -> None:
    assert len(zhol_commands()) >= 25


@pytest.mark.parametrize("command", zhol_commands())
def test_every_zhol_command_parses_as_written(command: str) -> None:
    for name, value in VARIABLES.items():
        command = command.replace(name, value)
    argv = shlex.split(command)[1:]
    if "--help" in argv or not any(a.startswith("--") for a in argv):
        # `zhol gateway allow` named in a sentence: the subcommand must exist
        argv = [a for a in argv if a != "--help"]
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args([*argv, "--help"])
        assert exited.value.code == 0, f"{command!r}: no such subcommand"
        return
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of refusing a flag or a value
        pytest.fail(f"{command!r} does not parse (exit {exc.code})")
    assert callable(args.func)


def test_the_contract_compiles_and_declares_its_method(tmp_path: Path) -> None:
    (proto,) = blocks("proto")
    path = tmp_path / "taxes.proto"
    path.write_text(proto)
    contract = compile_proto(path)
    assert check_offer(contract, "zhol.taxes.v1.TaxRegistry", ()) == ("GetTaxpayer",)


def test_the_python_files_compile() -> None:
    sources = blocks("python")
    assert len(sources) == 4  # provider, its client, publisher, receiver
    for source in sources:
        compile(source, str(GUIDE), "exec")


def test_every_file_of_the_guide_names_its_path() -> None:
    """The walk (tests/integration/test_new_agency_walk.py) writes them where it says."""
    written = files()
    assert sorted(written) == [
        "taxes/get_taxpayer.py", "taxes/provider.py", "taxes/publish.py", "taxes/receiver.py",
        "taxes/taxes.proto",
    ]  # fmt: skip
    assert len(written) == len(blocks("python")) + len(blocks("proto"))
