"""The pension system's recalculation operation over gRPC
(zhol.pension.v1.PensionRecalculation, served beside PensionRegistry on the adapter's
port; not a bus service).

``RecalculateBenefits`` first asks education (through our gateway, when the bus is on)
for the studies of each survivor pension's child aged 17 to 22
(``recalculating.children_to_check``; purpose: the survivor pension's full-time study
check, the child as data subject); a failed read is kept as the reason that child's
pension is skipped. It then runs ``recalculating.run`` on the writer thread (one
transaction per decision) and wakes the outbox publisher when it wrote anything. Failures are plain
gRPC statuses as for PensionRegistry: ``as_of`` after today or before 2010
INVALID_ARGUMENT (nothing changed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import grpc

from zhol.adapters.pension import recalculating
from zhol.adapters.pension.handlers import STATUS
from zhol.adapters.pension.model import PensionError
from zhol.adapters.pension.sources import StudyReader
from zhol.adapters.pension.store import PensionStore
from zhol.adapters.runtime.service import RequestParser, StorePair, rpc_errors
from zhol.core.clock import Clock
from zhol.pension.v1 import recalculation_pb2 as rpb
from zhol.pension.v1 import recalculation_pb2_grpc as rpb_grpc

log = logging.getLogger("zhol.adapters.pension")

_rpc = rpc_errors(STATUS, log, "pension")
PURPOSE = ("pension: survivor pension recalculation, full-time study of a child of 17 to 22"
           " (paid past 18 while studying, at most until 23)")
_parse = RequestParser(recalculating.InvalidInput)


class PensionRecalculationServicer(rpb_grpc.PensionRecalculationServicer):
    def __init__(self, stores: StorePair[PensionStore], clock: Clock,
                 education: StudyReader | None = None) -> None:
        self._stores = stores
        self._clock = clock
        self._education = education  # None: the bus is off, studies are not checked
        self._lock = asyncio.Lock()  # one run at a time (each decision is its own write)

    @_rpc
    async def RecalculateBenefits(
        self, request: rpb.RecalculateBenefitsRequest, context: grpc.aio.ServicerContext
    ) -> rpb.RecalculateBenefitsResponse:
        writer = self._stores.writer
        as_of = _parse.optional_date(request.as_of, "as_of") or self._stores.reader.today()
        async with self._lock:
            studies = await self._studies(as_of)
            report = await self._stores.write(
                lambda: recalculating.run(writer, as_of, dry_run=request.dry_run,
                                          now_ms=self._clock.now_ms, studies=studies),
                notify=False,
            )
        if report.recalculated and not report.dry_run:
            self._stores.committed()
        log.info("recalculation run", extra={
            "as_of": as_of.isoformat(), "dry_run": report.dry_run,
            "examined": report.examined, "recalculated": len(report.recalculated),
            "skipped": len(report.skipped)})
        return recalculating.report_pb(report, writer.today())

    async def _studies(self, as_of: dt.date
                       ) -> dict[str, recalculating.StudiesRead] | None:
        """Education's answer for each child the run checks (no transaction open)."""
        if self._education is None:
            return None
        found: dict[str, recalculating.StudiesRead] = {}
        for iin in recalculating.children_to_check(self._stores.reader.connection, as_of):
            try:
                studies = await self._education.list_studies(iin, purpose=PURPOSE)
            except PensionError as err:
                found[iin] = recalculating.StudiesRead(failed=str(err))
            else:
                found[iin] = recalculating.StudiesRead(studies)
        return found
