"""The adapter side of the bus: calling other agencies through our own gateway
(``client``, ``population``), publishing events from a transactional outbox
(``outbox``) and receiving them exactly once in effect (``inbox``).

Adapters import the modules (``from adapters.bus.client import BusClient``); the
names below are re-exported for convenience.
"""

from zhol.adapters.bus.client import BusCallError, BusClient, BusIdentity, BusReply
from zhol.adapters.bus.inbox import (
    INBOX_SCHEMA,
    Apply,
    EventRejected,
    EventSinkServicer,
    Handler,
)
from zhol.adapters.bus.outbox import OUTBOX_SCHEMA, OutboxPublisher, enqueue_event
from zhol.adapters.bus.population import PopulationReader

__all__ = [
    "INBOX_SCHEMA",
    "OUTBOX_SCHEMA",
    "Apply",
    "BusCallError",
    "BusClient",
    "BusIdentity",
    "BusReply",
    "EventRejected",
    "EventSinkServicer",
    "Handler",
    "OutboxPublisher",
    "PopulationReader",
    "enqueue_event",
]
