"""docs/new-agency.md read as a script: its shell commands in order and the files it
writes, for the tests that check it (tests/unit/test_new_agency_guide.py) and follow
it (tests/integration/test_new_agency_walk.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "new-agency.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# A code block that is a file of the guide names it on its first line: `# taxes/x.py`.
FILE_HEADER = re.compile(r"^(?:#|//) (taxes/[\w.]+)\n")
BACKGROUND = "in a terminal of its own"


@dataclass(frozen=True)
class Command:
    """One command line of a ```sh block: continuations joined, its comment apart."""

    line: str
    comment: str

    @property
    def background(self) -> bool:
        """The guide runs it "in a terminal of its own": a server that keeps running."""
        return BACKGROUND in self.comment


def guide(text: str | None = None) -> str:
    """The guide up to its list of what is not built yet (commands that do not exist)."""
    return (GUIDE.read_text() if text is None else text).split("\n## Not built yet", 1)[0]


def blocks(language: str, text: str | None = None) -> list[str]:
    return [body for lang, body in BLOCK.findall(guide(text)) if lang == language]


@dataclass(frozen=True)
class File:
    """A file the guide writes: a code block whose first line names its path."""

    path: str
    content: str


def steps(text: str | None = None) -> list[Command | File]:
    """What the reader does, in the guide's order: each command of the sh blocks
    (comment lines left out), and each file written."""
    found: list[Command | File] = []
    for lang, body in BLOCK.findall(guide(text)):
        if lang == "sh":
            for line in body.replace("\\\n", " ").splitlines():
                line, _, comment = line.partition(" #")
                line = " ".join(line.split())
                if line and not line.startswith("#"):
                    found.append(Command(line, comment.strip()))
        elif header := FILE_HEADER.match(body):
            found.append(File(header.group(1), body))
    return found


def commands(text: str | None = None) -> list[Command]:
    return [step for step in steps(text) if isinstance(step, Command)]


def files(text: str | None = None) -> dict[str, str]:
    """The files the guide writes (path -> content)."""
    return {step.path: step.content for step in steps(text) if isinstance(step, File)}
