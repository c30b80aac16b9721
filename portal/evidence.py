"""The evidence of one entry of "who used my data", downloaded as a file.

``GET /usage/evidence?gateway=KZ/GOV/MJ/gw1&message_id=<uuid>`` asks that gateway, over
the bus through the portal's own gateway (``/zhol.bus.v1.Usage/GetEvidence``), for the
evidence bundle of that exchange in its log, with the signed-in citizen as data
subject, or (``whom``) one of their minor children, parenthood read from population
at that moment as on the timeline (anyone else: 403, nothing asked), and hands it
over as an attachment that
``zhol audit verify`` checks offline (docs/portal.md). The gateway gives it only if
every record of that exchange is about the citizen, and says when it cannot prove it
yet; each answer becomes a page with its own HTTP status.
"""

from __future__ import annotations

from aiohttp import web

from zhol.bus.v1 import usage_pb2
from zhol.core.busclient import BusCallError
from zhol.core.ids import GatewayId
from zhol.portal import directory as usage_directory
from zhol.portal import usage
from zhol.security.evidence_bundle import BundleError, decode

GET_EVIDENCE = "/zhol.bus.v1.Usage/GetEvidence"
EVIDENCE_PURPOSE = "citizen's own request in the e-government portal: evidence of a use of my data"
CHILD_EVIDENCE_PURPOSE = (
    "citizen's request in the e-government portal about their minor child: evidence of a "
    "use of the child's data"
)
# A gateway signs a checkpoint every few seconds to minutes, and its witness and
# timestamping authority follow: a minute is a fair first wait.
RETRY_AFTER_S = 60


def is_message_id(text: str) -> bool:
    """A message id as the bus writes them: a lowercase UUID (36 characters)."""
    parts = text.split("-")
    return (
        len(text) == 36
        and [len(p) for p in parts] == [8, 4, 4, 4, 12]
        and all(c in "0123456789abcdef" for p in parts for c in p)
    )


def attachment_name(gateway: str, message_id: str) -> str:
    """``evidence-<message id>-<gateway with _ for />.json``: safe in any header."""
    return f"evidence-{message_id}-{str(GatewayId.parse(gateway)).replace('/', '_')}.json"


async def evidence_download(request: web.Request) -> web.StreamResponse:
    """GET /usage/evidence: the bundle as a file, or a page saying why not."""
    from zhol.portal import app as portal  # app.py routes here: imported late (no cycle)

    citizen = portal._citizen(request)
    settings = request.app[portal.SETTINGS]
    gateway = request.query.get("gateway", "")
    message_id = request.query.get("message_id", "")
    directory = await request.app[usage_directory.DIRECTORY].current()
    target = next((t for t in directory.targets if t.gateway == gateway), None)
    if target is None or not is_message_id(message_id):
        raise portal.PageError(400, "error_400")
    subject = await usage.checked_subject(request, citizen, request.query.get("whom", ""))
    ask = usage_pb2.GetEvidenceRequest(
        data_subject=subject, message_id=message_id, gateway=target.gateway
    )
    try:
        answer = await request.app[portal.BUS].call(
            GET_EVIDENCE,
            ask,
            usage_pb2.GetEvidenceResponse,
            purpose=EVIDENCE_PURPOSE if subject == citizen else CHILD_EVIDENCE_PURPOSE,
            data_subject=subject,
            user_id=f"citizen:{citizen}",
            timeout=settings.bus_timeout_s,
            provider=target.subsystem,
        )
    except BusCallError as err:
        code = (err.zhol_error or "").rpartition(".")[2]
        if code == "EvidenceNotFound":
            raise portal.PageError(404, "evidence_not_found") from None
        if code == "EvidenceNotReady":
            page = portal._error_page(request, 503, "evidence_not_ready")
            page.headers["Retry-After"] = str(RETRY_AFTER_S)
            return page
        raise portal.PageError(502, "evidence_unavailable") from None
    if not _is_the_bundle(answer.bundle, target.gateway, message_id, subject):
        raise portal.PageError(502, "evidence_unavailable")
    return web.Response(
        body=answer.bundle,
        content_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{attachment_name(gateway, message_id)}"'
        },
    )


def _is_the_bundle(data: bytes, gateway: str, message_id: str, subject: str) -> bool:
    """Whether the answer is a bundle of that gateway's records of that exchange, all
    about the subject asked about. Not a verification (that is the citizen's, offline): a guard
    against handing over anything else."""
    try:
        bundle = decode(data)
    except BundleError:
        return False
    return (
        bundle.gateway == gateway
        and bool(bundle.records)
        and all(
            r.columns["message_id"] == message_id and r.columns["data_subject"] == subject
            for r in bundle.records
        )
    )
