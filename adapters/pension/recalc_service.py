"""The pension system's recalculation operation over gRPC
(zhol.pension.v1.PensionRecalculation, served beside PensionRegistry on the adapter's
port; not a bus service).

``RecalculateBenefits`` runs ``recalculating.run`` on the writer thread (one transaction
per decision) and wakes the outbox publisher when it wrote anything. Failures are plain
gRPC statuses as for PensionRegistry: ``as_of`` after today or before 2010
INVALID_ARGUMENT (nothing changed).
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from zhol.adapters.pension import recalculating
from zhol.adapters.pension.handlers import STATUS
from zhol.adapters.pension.store import PensionStore
from zhol.adapters.runtime.service import RequestParser, StorePair, rpc_errors
from zhol.core.clock import Clock
from zhol.pension.v1 import recalculation_pb2 as rpb
from zhol.pension.v1 import recalculation_pb2_grpc as rpb_grpc

log = logging.getLogger("zhol.adapters.pension")

_rpc = rpc_errors(STATUS, log, "pension")
_parse = RequestParser(recalculating.InvalidInput)


class PensionRecalculationServicer(rpb_grpc.PensionRecalculationServicer):
    def __init__(self, stores: StorePair[PensionStore], clock: Clock) -> None:
        self._stores = stores
        self._clock = clock
        self._lock = asyncio.Lock()  # one run at a time (each decision is its own write)

    @_rpc
    async def RecalculateBenefits(
        self, request: rpb.RecalculateBenefitsRequest, context: grpc.aio.ServicerContext
    ) -> rpb.RecalculateBenefitsResponse:
        writer = self._stores.writer
        as_of = _parse.optional_date(request.as_of, "as_of") or self._stores.reader.today()
        async with self._lock:
            report = await self._stores.write(
                lambda: recalculating.run(writer, as_of, dry_run=request.dry_run,
                                          now_ms=self._clock.now_ms),
                notify=False,
            )
        if report.recalculated and not report.dry_run:
            self._stores.committed()
        log.info("recalculation run", extra={
            "as_of": as_of.isoformat(), "dry_run": report.dry_run,
            "examined": report.examined, "recalculated": len(report.recalculated),
            "skipped": len(report.skipped)})
        return recalculating.report_pb(report, writer.today())
