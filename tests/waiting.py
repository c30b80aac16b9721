"""Waiting for a condition instead of sleeping a guessed time.

A test that sleeps "long enough" fails on a busy machine; one that waits for the
state it asserts on does not, and still fails (with a timeout) if the state never comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

POLL_S = 0.01


async def until(
    condition: Callable[[], bool | Awaitable[bool]], *, timeout: float = 10.0, what: str = ""
) -> None:
    """Return once ``condition()`` (sync or async) is true; AssertionError after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"not reached within {timeout} s: {what or condition}")
        await asyncio.sleep(POLL_S)
