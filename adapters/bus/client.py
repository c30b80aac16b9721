"""The bus client lives in ``zhol.core.busclient`` (shared with the citizen portal, which
may not import the adapters); adapters keep importing it from here."""

from zhol.core.busclient import BusCallError, BusClient, BusIdentity, BusReply

__all__ = ["BusCallError", "BusClient", "BusIdentity", "BusReply"]
