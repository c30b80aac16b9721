"""docs/new-agency.md says what exists: every `zhol` command it writes parses as written
(a renamed flag fails here, not for the next agency developer), its contract compiles
into a descriptor set declaring the method it publishes, the contract and program
excerpts it shows are those `zhol new-agency` writes, and its own files are valid."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.new_agency_guide import BLOCK, FILE_HEADER, blocks, files, guide
from zhol.cli.contract import check_offer, compile_proto
from zhol.cli.main import build_parser
from zhol.cli.main import main as zhol_main

# The shell variables the guide sets, as values of the right shape.
VARIABLES = {
    "$REGISTRY": "127.0.0.1:4400",
    "$ANCHOR": "anchor.pem",
    "$IIN": "000101600018",
    '"$ME"': "'zhol-client: KZ/GOV/SRC/taxes'",
    '"$PENSION"': "'zhol-client: KZ/GOV/MLSPP/pension'",
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


@pytest.fixture(scope="module")
def scaffold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the guide's `zhol new-agency` command writes."""
    (command,) = [c for c in zhol_commands() if c.startswith("zhol new-agency ")]
    out = tmp_path_factory.mktemp("scaffold") / "taxes"
    argv = shlex.split(command)[1:]
    argv[argv.index("--out") + 1] = str(out)
    assert zhol_main(argv) == 0
    return out


def excerpt_parts(excerpt: str) -> list[str]:
    """An excerpt's runs of lines between its "..." gaps."""
    parts = re.split(r"^\s*\.\.\.\n", excerpt, flags=re.MULTILINE)
    return [part for part in parts if part.strip()]


def test_the_contract_shown_is_the_one_written_and_declares_its_method(
    scaffold: Path,
) -> None:
    (proto,) = blocks("proto")
    written = (scaffold / "taxes.proto").read_text()
    assert proto in written
    contract = compile_proto(scaffold / "taxes.proto")
    assert check_offer(contract, "zhol.taxes.v1.TaxRegistry", ()) == ("GetRecord",)


def test_the_programs_shown_are_the_ones_written(scaffold: Path) -> None:
    excerpts = [body for body in blocks("js") if not FILE_HEADER.match(body)]
    assert len(excerpts) == 2  # the provider's handler, the receiver's
    programs = (scaffold / "provider.js").read_text() + (scaffold / "receiver.js").read_text()
    for excerpt in excerpts:
        for part in excerpt_parts(excerpt):
            assert part in programs, part


def test_the_guide_s_own_files_are_valid_node(scaffold: Path, tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    for path, content in files().items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        done = subprocess.run(["node", "--check", str(target)], capture_output=True, check=False)
        assert done.returncode == 0, done.stderr


def test_every_file_of_the_guide_names_its_path() -> None:
    """The walk (tests/integration/test_new_agency_walk.py) writes them where it says."""
    assert sorted(files()) == ["taxes/get_record.js"]
