"""`zhol gateway refresh`: asking the running gateway to fetch its configuration now.

Through the data directory, like `zhol gateway status` (gateway/healthfile.py): the
command writes ``.refresh-<token>.request``; the running gateway looks for such files
every REQUEST_CHECK_S, removes them, fetches the configuration from the registry once
(the ordinary path: verified against the anchor) and answers each in
``.refresh-<token>.json`` with the version it then holds, or why the fetch failed.
Whoever can write the data directory administers the gateway anyway; the most a
request can make the gateway do is one fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhol.gateway.confsource import ConfSource

log = logging.getLogger("zhol.gateway.conf")

REQUEST_CHECK_S = 0.25
_TOKEN = re.compile(r"[0-9a-f]{32}")
_PREFIX = ".refresh-"


def request_path(data_dir: Path, token: str) -> Path:
    return data_dir / f"{_PREFIX}{token}.request"


def answer_path(data_dir: Path, token: str) -> Path:
    return data_dir / f"{_PREFIX}{token}.json"


@dataclass(frozen=True, slots=True)
class RefreshAnswer:
    """What the gateway holds after the fetch it was asked for."""

    version: int | None  # None: it holds no configuration
    generated_at_ms: int | None
    expires_at_ms: int | None
    accepted: bool  # the fetch brought a newer version
    error: str | None  # the fetch's full error code, if it failed
    detail: str | None
    watching: bool  # whether its watch on the registry is open

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "generated_at_ms": self.generated_at_ms,
            "expires_at_ms": self.expires_at_ms,
            "accepted": self.accepted,
            "error": self.error,
            "detail": self.detail,
            "watching": self.watching,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RefreshAnswer:
        return cls(
            version=doc["version"],
            generated_at_ms=doc["generated_at_ms"],
            expires_at_ms=doc["expires_at_ms"],
            accepted=bool(doc["accepted"]),
            error=doc["error"],
            detail=doc["detail"],
            watching=bool(doc["watching"]),
        )


def pending_tokens(data_dir: Path) -> list[str]:
    """Tokens of the requests waiting in data_dir (well-formed names only)."""
    tokens = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(data_dir):
            name = entry.name
            if name.startswith(_PREFIX) and name.endswith(".request"):
                token = name[len(_PREFIX) : -len(".request")]
                if _TOKEN.fullmatch(token):
                    tokens.append(token)
    return tokens


class RefreshRequests:
    """Answers refresh requests left in the running gateway's data directory."""

    def __init__(
        self,
        data_dir: Path,
        conf: ConfSource,
        watching: Callable[[], bool] | None = None,
        interval_s: float = REQUEST_CHECK_S,
    ) -> None:
        self._data_dir = data_dir
        self._conf = conf
        self._watching = watching  # whether the watch is open; None: no watch
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.answer_pending()
            except Exception:  # keep answering; a bug here must not stop the gateway
                log.exception("refresh request failed")

    async def answer_pending(self) -> int:
        """Fetch once for every request waiting and answer each; returns how many."""
        tokens = pending_tokens(self._data_dir)
        if not tokens:
            return 0
        for token in tokens:
            with contextlib.suppress(FileNotFoundError):
                request_path(self._data_dir, token).unlink()
        accepted = await self._conf.refresh()
        err = self._conf.last_error
        trusted = self._conf.loaded
        answer = RefreshAnswer(
            version=None if trusted is None else trusted.conf.version,
            generated_at_ms=None if trusted is None else trusted.conf.generated_at_ms,
            expires_at_ms=None if trusted is None else trusted.conf.expires_at_ms,
            accepted=accepted,
            error=None if err is None else err.full_code,
            detail=None if err is None else err.detail,
            watching=self._watching is not None and self._watching(),
        )
        log.info(
            "configuration refresh asked: v%s%s",
            answer.version,
            f" ({answer.error})" if answer.error else "",
        )
        for token in tokens:
            path = answer_path(self._data_dir, token)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(answer.to_json()))
            os.replace(tmp, path)
        return len(tokens)
