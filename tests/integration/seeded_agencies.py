"""Pension, health and education as real gRPC servers on seeded databases, behind their
own gateways in an in-process federation (tests/integration/bus_federation.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.integration.bus_federation import Federation
from zhol.adapters.education.seed import seed_database as seed_education
from zhol.adapters.education.server import EducationSettings
from zhol.adapters.education.server import serve as serve_education
from zhol.adapters.health.seed import seed_database as seed_health
from zhol.adapters.health.server import HealthSettings
from zhol.adapters.health.server import serve as serve_health
from zhol.adapters.pension.seed import seed_database as seed_pension
from zhol.adapters.pension.server import PensionSettings
from zhol.adapters.pension.server import serve as serve_pension
from zhol.cli.federation import SUBSYSTEMS

KZ_TIME = dt.timezone(dt.timedelta(hours=5))
GATEWAY_OF = {s.adapter: s.gateway for s in SUBSYSTEMS}
AGENCIES = ("pension", "health", "education")

_SERVE = {
    "pension": lambda db, listen, gw: serve_pension(
        PensionSettings(db_path=db, listen=listen, gateway_address=gw)),
    "health": lambda db, listen, gw: serve_health(
        HealthSettings(db_path=db, listen=listen, gateway_address=gw)),
    "education": lambda db, listen, gw: serve_education(
        EducationSettings(db_path=db, listen=listen, gateway_address=gw)),
}  # fmt: skip


async def serve_seeded_agencies(fed: Federation, servers: dict[str, Any]) -> None:
    """Start health's and education's gateways, seed the three agencies' databases from
    population (as of Kazakhstan's today) and serve them; each server goes into
    ``servers`` as it starts, so the caller stops whatever started."""
    for gateway_id in {GATEWAY_OF["health"], GATEWAY_OF["education"]}:
        await fed.start_gateway(gateway_id)
    layout, ports = fed.layout, fed.ports
    today = dt.datetime.now(KZ_TIME).date()
    for agency in AGENCIES:
        layout.adapter_db(agency).parent.mkdir(parents=True, exist_ok=True)
    seed_pension(layout.adapter_db("pension"), layout.population_db, as_of=today)
    seed_health(layout.adapter_db("health"), layout.population_db)
    seed_education(layout.adapter_db("education"), layout.population_db, as_of=today)
    for agency in AGENCIES:
        servers[agency] = await _SERVE[agency](
            layout.adapter_db(agency), ports.adapter_address(agency),
            ports.is_address(GATEWAY_OF[agency]),
        )  # fmt: skip
