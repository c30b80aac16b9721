"""What a subscribing IS's refusal of an event says, and what the publisher does with it.

Pure logic shared by both gateways: the subscriber's gateway caps and cleans the
receiver's message before sealing it into its acknowledgement; the publisher's
gateway does the same again on receipt (a peer's text is not trusted either) and
decides whether the refusal is worth retrying (docs/protocol.md, 'Events').
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc

# The receiver's message is its own text: we keep it short and free of control
# characters, and blank out anything shaped like an IIN.
MAX_MESSAGE_CHARS = 200
_IIN_LIKE = re.compile(r"\d{12,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")

# A receiver that does not handle a topic answers UNIMPLEMENTED; one that says the
# event itself is malformed answers INVALID_ARGUMENT. Retrying the same bytes cannot
# change either answer, so the delivery becomes a dead letter at once (an operator
# fixes the receiver, then `zhol events retry`). Any other code is retried.
PERMANENT_STATUSES = frozenset({grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INVALID_ARGUMENT})

_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def clean_message(text: str) -> str:
    """The receiver's message, fit to sign, log and show: capped, one line, no IINs."""
    text = _IIN_LIKE.sub("[redacted]", _CONTROL.sub(" ", text)).strip()
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return text


def status_name(code: int) -> str:
    """'FAILED_PRECONDITION' for 9; an unknown number stays a number."""
    known = _BY_VALUE.get(code)
    return known.name if known is not None else str(code)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A receiving IS's answer other than OK, as the signed acknowledgement states it."""

    status_code: int
    message: str

    @property
    def permanent(self) -> bool:
        known = _BY_VALUE.get(self.status_code)
        return known in PERMANENT_STATUSES

    def __str__(self) -> str:
        return (
            f"{status_name(self.status_code)}: {self.message}"
            if self.message
            else (status_name(self.status_code))
        )
