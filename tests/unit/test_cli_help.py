"""Every `zhol` option and positional says what it is: `--help` is the first place an agency
developer looks (issue 13 found `zhol gateway init --member-name` and others bare)."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator

import pytest

from zhol.cli.gateway import _waiting
from zhol.cli.main import build_parser


def _parsers(
    parser: argparse.ArgumentParser, path: str = "zhol"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def _bare_arguments() -> list[str]:
    bare = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if action.help is argparse.SUPPRESS:
                continue
            if not (action.help or "").strip():
                name = "/".join(action.option_strings) or action.dest
                bare.append(f"{path} {name}")
    return bare


def test_every_option_and_positional_has_help_text() -> None:
    assert _bare_arguments() == []


def test_every_subcommand_has_help_text() -> None:
    bare = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {choice.dest for choice in action._choices_actions}
                for name in action.choices:
                    if name not in listed:
                        bare.append(f"{path} {name}")
    assert bare == []


def test_gateway_init_help_says_what_happens_while_approval_is_pending(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gateway", "init", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "zhol registry approve" in text
    assert "registrations.json" in text  # a rerun waits on the same request


def test_the_approve_command_init_prints_while_waiting_parses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A command the operator is told to run is one that runs (it lacked --dir)."""
    _waiting("3919b713-4670-4e06-b850-db54f1bcdb15", 60)
    (command,) = re.findall(r"`(zhol registry approve [^`]+)`", capsys.readouterr().err)
    argv = shlex.split(command.replace("REGISTRY_DIR", "demo-data/registry"))[1:]
    args = build_parser().parse_args(argv)
    assert args.dir == "demo-data/registry"
    assert args.request_id == "3919b713-4670-4e06-b850-db54f1bcdb15"
