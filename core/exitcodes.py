"""Command-line exit codes (docs/operators.md) and how catalogued errors map to them."""

from __future__ import annotations

import sys

from zhol.core.errors import Category, ZholError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANNOT_CHECK = 0, 1, 2, 3

_BY_CATEGORY = {
    Category.BAD_REQUEST: EXIT_USAGE,
    Category.TRANSPORT: EXIT_CANNOT_CHECK,
    Category.TIMEOUT: EXIT_CANNOT_CHECK,
    Category.CONFIGURATION: EXIT_CANNOT_CHECK,
}


def exit_code_for(err: ZholError) -> int:
    """Usage errors 2, could-not-check 3, everything refused or failed 1."""
    return _BY_CATEGORY.get(err.code.category, EXIT_FAILED)


def report(err: ZholError) -> int:
    """Print the error's full code and detail on stderr; return its exit code."""
    print(f"{err.full_code}: {err.detail}", file=sys.stderr)
    return exit_code_for(err)
