"""What every agency's gRPC servicer shares (its service.py keeps the agency's RPCs).

- ``StorePair``: the agency's store opened twice on one database: a writer and a
  read-only reader (the writer is closed again if the reader cannot be opened). Reads
  run on the event loop against ``reader``; ``write`` runs one write at a time on the
  single writer thread (off the loop) and then, on success only, calls ``on_commit``
  (the outbox publisher's ``notify``, so an enqueued event is published at once).
- ``abort_with_status``: ends a call with the status an exception maps to: a
  ``ZholError`` its own, an agency error the status of its kind, anything else is logged
  and answered INTERNAL "internal error" (no detail leaves the process). ``rpc_errors``
  makes the decorator an agency puts on each RPC method to do that for all it raises.
- ``RequestParser``: request fields every agency parses alike (IINs, ``Date``
  messages, ``read_mask`` field masks), raising the agency's own InvalidInput.
- ``ReadMask``: a partial response (AIP-157): which of an answer's fields the caller
  asked for, so an agency can skip the work (a population read) behind the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, NoReturn, Protocol, TypeVar, cast

import grpc
from google.protobuf.descriptor import Descriptor
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from zhol.core.clock import Clock
from zhol.core.errors import ZholError
from zhol.core.iin import Iin

Notify = Callable[[], None]
# The first kind an exception is an instance of gives its status (order: specific first).
StatusTable = Sequence[tuple[type[Exception], grpc.StatusCode]]
# An agency's own mapping; None (or INTERNAL) means "unexpected".
StatusOf = Callable[[Exception], "grpc.StatusCode | None"]

T = TypeVar("T")
M = TypeVar("M", bound=Message)
Servicer = TypeVar("Servicer")
Request = TypeVar("Request")
Response = TypeVar("Response")
Rpc = Callable[[Servicer, Request, grpc.aio.ServicerContext], Awaitable[Response]]


class Store(Protocol):
    def close(self) -> None: ...


St = TypeVar("St", bound=Store)
St_co = TypeVar("St_co", bound=Store, covariant=True)


class OpenStore(Protocol[St_co]):
    """An agency store's ``open`` classmethod (``PopulationStore.open`` ...)."""

    def __call__(self, path: Path, clock: Clock, *, read_only: bool = False) -> St_co: ...


class StorePair(Generic[St]):
    """A writer and a read-only store on one database, and the single writer thread."""

    def __init__(self, reader: St, writer: St, *, agency: str,
                 on_commit: Notify | None = None) -> None:
        self.reader = reader
        self.writer = writer
        self._on_commit = on_commit
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{agency}-writer")

    @classmethod
    def open(cls, open_store: OpenStore[St], db_path: Path, clock: Clock, *, agency: str,
             on_commit: Notify | None = None) -> StorePair[St]:
        """Open the writer first (it creates or checks the schema), then the reader."""
        writer = open_store(db_path, clock)
        try:
            reader = open_store(db_path, clock, read_only=True)
        except BaseException:
            writer.close()
            raise
        return cls(reader, writer, agency=agency, on_commit=on_commit)

    async def write(self, operation: Callable[..., T], *args: object, notify: bool = True) -> T:
        """Run ``operation(*args)`` on the writer thread; when it returns (committed),
        call ``on_commit`` unless ``notify`` is False (a write that enqueues no event)."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._writes, operation, *args)
        if notify:
            self.committed()
        return result

    def committed(self) -> None:
        """Tell the publisher a write enqueued an event (for writes that decide late)."""
        if self._on_commit is not None:
            self._on_commit()

    def close(self) -> None:
        """Wait for a running write, then close both connections."""
        self._writes.shutdown(wait=True)
        self.writer.close()
        self.reader.close()


def status_in(table: StatusTable, exc: Exception) -> grpc.StatusCode | None:
    for kind, status in table:
        if isinstance(exc, kind):
            return status
    return None


async def abort_with_status(
    context: grpc.aio.ServicerContext,
    exc: Exception,
    table: StatusTable | StatusOf,
    log: logging.Logger,
    agency: str,
) -> NoReturn:
    """End the call with the status for ``exc`` (never returns; ``context.abort`` raises).

    ``table`` maps the agency's error kinds to statuses (or is a function doing so);
    an exception it does not map, or maps to INTERNAL, is unexpected: logged with its
    stack as "<agency> request failed" and answered INTERNAL "internal error"."""
    if isinstance(exc, ZholError):
        await context.abort(exc.status, exc.detail)
    status = table(exc) if callable(table) else status_in(table, exc)
    if status is not None and status is not grpc.StatusCode.INTERNAL:
        await context.abort(status, str(exc))
    log.error("%s request failed", agency, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")
    raise AssertionError("unreachable")  # context.abort raises


def rpc_errors(
    table: StatusTable | StatusOf, log: logging.Logger, agency: str
) -> Callable[[Rpc[Servicer, Request, Response]], Rpc[Servicer, Request, Response]]:
    """A decorator for an agency's RPC methods: whatever ``Exception`` the method raises
    ends the call through ``abort_with_status(context, exc, table, log, agency)``."""

    def decorate(
        method: Rpc[Servicer, Request, Response],
    ) -> Rpc[Servicer, Request, Response]:
        @functools.wraps(method)
        async def rpc(self: Servicer, request: Request,
                      context: grpc.aio.ServicerContext) -> Response:
            try:
                return await method(self, request, context)
            except Exception as exc:
                await abort_with_status(context, exc, table, log, agency)

        return rpc

    return decorate


@dataclass(frozen=True, slots=True)
class ReadMask:
    """The fields of an answer a caller asked for (``paths`` None: every field)."""

    paths: tuple[str, ...] | None = None

    def wants_any(self, *fields: str) -> bool:
        """Whether any of these top-level fields (or a field inside one) is asked for."""
        if self.paths is None:
            return True
        return any(p.split(".", 1)[0] in fields for p in self.paths)

    def apply(self, answer: M) -> M:
        """``answer`` with only the asked-for fields set (itself when every field is)."""
        if self.paths is None:
            return answer
        narrowed = type(answer)()
        FieldMask(paths=self.paths).MergeMessage(answer, narrowed)
        return narrowed


EVERY_FIELD = ReadMask()


class DateFields(Protocol):
    """Any agency's ``Date`` message (each proto package has its own)."""

    year: int
    month: int
    day: int


@dataclass(frozen=True, slots=True)
class RequestParser:
    """Parses request fields into values, raising ``invalid(message)`` (the agency's
    InvalidInput) with the field's name in the message."""

    invalid: Callable[[str], Exception]

    def iin(self, text: str, field: str) -> Iin:
        try:
            return Iin.parse(text)
        except ZholError as err:
            raise self.invalid(f"{field}: {err.detail}") from None

    def optional_date(self, message: DateFields, field: str) -> dt.date | None:
        """None for an unset (all-zero) date."""
        if message.year == 0 and message.month == 0 and message.day == 0:
            return None
        try:
            return dt.date(message.year, message.month, message.day)
        except (ValueError, OverflowError):
            raise self.invalid(f"{field} is not a valid date") from None

    def read_mask(
        self, request: Message, answer: type[Message], field: str = "read_mask"
    ) -> ReadMask:
        """The request's ``read_mask`` over ``answer``'s fields: unset, empty or "*" is
        every field; a path that names no field of ``answer`` (or "*" beside others)
        is invalid, so a typo never silently drops part of an answer."""
        if not request.HasField(field):
            return EVERY_FIELD
        paths = tuple(getattr(request, field).paths)
        if not paths or paths == ("*",):
            return EVERY_FIELD
        # upb's descriptor class is the same type at runtime; the stubs name two.
        fields = cast(Descriptor, answer.DESCRIPTOR)
        for path in paths:
            if not FieldMask(paths=[path]).IsValidForDescriptor(fields):
                raise self.invalid(f"{field}: {path!r} is not a field of {answer.DESCRIPTOR.name}")
        return ReadMask(paths)

    def date(self, message: DateFields, field: str) -> dt.date:
        date = self.optional_date(message, field)
        if date is None:
            raise self.invalid(f"{field} is required")
        return date
