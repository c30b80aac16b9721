"""Ports chosen for processes started later lie outside the kernel's ephemeral range."""

from __future__ import annotations

import random
import socket
from types import SimpleNamespace

import pytest

from zhol.cli import ports
from zhol.cli.ports import _ephemeral_low, free_port


def test_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(1024 < port < _ephemeral_low() for port in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[0]))


def held_port_in_range() -> socket.socket:
    """A listening socket on a port free_port draws from but has never handed out."""
    for port in range(ports._LOWEST, ports._ephemeral_low()):
        if port in ports._handed_out:
            continue
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen()
        return sock
    raise AssertionError("no free port to hold")


def test_a_port_in_use_is_never_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The random draw lands on a port someone else holds: free_port must skip it."""
    with held_port_in_range() as held:
        taken = held.getsockname()[1]
        draws = iter([taken, taken, taken])
        fallback = random.Random(7)

        def randint(low: int, high: int) -> int:
            return next(draws, None) or fallback.randint(low, high)

        monkeypatch.setattr(ports, "random", SimpleNamespace(randint=randint))
        chosen = free_port()
        assert chosen != taken
        assert next(draws, None) is None  # the held port really was drawn, three times
