"""Forward: failover order, the short memory of unreachable gateways, no failover on bus errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import pytest

from zhol.bus.v1 import bus_pb2
from zhol.core.errors import Hop, ZholError
from zhol.core.ids import GatewayId
from zhol.core.metadata import ERROR_ID_KEY, ERROR_KEY
from zhol.gateway.consumer_stages import Forward
from zhol.gateway.exchange import ConsumerExchange
from zhol.security.globalconf import GatewayEntry
from zhol.security.sealing import Seal

GW1 = GatewayEntry(GatewayId.parse("KZ/GOV/MJ/gw1"), "127.0.0.1:1", b"1", b"")
GW2 = GatewayEntry(GatewayId.parse("KZ/GOV/MJ/gw2"), "127.0.0.1:2", b"2", b"")


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, trailers: tuple[tuple[str, str], ...] = ()) -> None:
        self._code = code
        self._trailers = trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return ""

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailers


@dataclass
class Clock:
    now: int = 1_000_000

    def now_ms(self) -> int:
        return self.now


@dataclass
class Peers:
    """Each address answers, or raises the error set for it; records the call order."""

    failing: dict[str, Exception] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    async def send(
        self,
        address: str,
        gateway: GatewayId,
        message: bus_pb2.SignedMessage,
        timeout: float | None,
    ) -> bus_pb2.SignedMessage:
        self.calls.append(address)
        if address in self.failing:
            raise self.failing[address]
        return bus_pb2.SignedMessage(header=b"answer")


def exchange() -> ConsumerExchange:
    x = ConsumerExchange("/pkg.Svc/Get", b"", {}, None)
    x.targets = (GW1, GW2)
    x.request = Seal(b"h", b"b", b"s", b"", b"")
    return x


async def test_unreachable_gateway_is_tried_last_for_a_while() -> None:
    clock = Clock()
    peers = Peers(failing={GW1.address: FakeRpcError(grpc.StatusCode.UNAVAILABLE)})
    forward = Forward(peers.send, clock)

    x = exchange()
    await forward(x)
    assert x.peer == GW2.id and peers.calls == [GW1.address, GW2.address]

    peers.calls.clear()
    await forward(x := exchange())
    assert x.peer == GW2.id and peers.calls == [GW2.address]

    # Everything else down: the remembered gateway is still tried, and answers again.
    peers.calls.clear()
    peers.failing = {GW2.address: FakeRpcError(grpc.StatusCode.UNAVAILABLE)}
    await forward(x := exchange())
    assert x.peer == GW1.id and peers.calls == [GW2.address, GW1.address]

    # Once the memory has passed, the failover order is the configured one again.
    peers.calls.clear()
    peers.failing = {}
    clock.now += Forward.DOWN_MS + 1
    await forward(x := exchange())
    assert x.peer == GW1.id and peers.calls == [GW1.address]


async def test_all_unreachable_is_a_network_error() -> None:
    down = FakeRpcError(grpc.StatusCode.UNAVAILABLE)
    peers = Peers(failing={GW1.address: down, GW2.address: down})
    with pytest.raises(ZholError) as caught:
        await Forward(peers.send, Clock())(exchange())
    assert caught.value.full_code == "Server.ClientProxy.NetworkError"
    assert peers.calls == [GW1.address, GW2.address]


@pytest.mark.parametrize("status", [grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE])
async def test_error_reported_by_a_gateway_is_returned_as_is(status: grpc.StatusCode) -> None:
    reported = FakeRpcError(
        status,
        ((ERROR_KEY, "Server.ServerProxy.AccessDenied"), (ERROR_ID_KEY, "id-17")),
    )
    peers = Peers(failing={GW1.address: reported})
    with pytest.raises(ZholError) as caught:
        await Forward(peers.send, Clock())(exchange())
    assert caught.value.full_code == "Server.ServerProxy.AccessDenied"
    assert caught.value.error_id == "id-17" and caught.value.remote
    assert peers.calls == [GW1.address]


async def test_deadline_is_not_failed_over() -> None:
    peers = Peers(failing={GW1.address: FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED)})
    with pytest.raises(ZholError) as caught:
        await Forward(peers.send, Clock())(exchange())
    assert caught.value.code.name == "Timeout"
    assert peers.calls == [GW1.address]


async def test_error_a_call_stream_reports_is_returned_as_is() -> None:
    """On a CallStream the peer's bus error arrives as a remote ZholError: no failover."""
    reported = ZholError(
        "AccessDenied", "no right", hop=Hop.SERVER_PROXY, error_id="id-18", remote=True
    )
    peers = Peers(failing={GW1.address: reported})
    forward = Forward(peers.send, Clock())
    with pytest.raises(ZholError) as caught:
        await forward(exchange())
    assert caught.value is reported
    assert peers.calls == [GW1.address]
