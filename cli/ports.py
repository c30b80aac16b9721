"""Choosing TCP ports for processes that are started later.

A port picked by binding to port 0 comes from the kernel's ephemeral range,
the same range the kernel hands out to outgoing connections; between picking
it and the process binding it, a client socket may take it ("Address already in
use"). Ports picked here lie below that range, where the kernel never assigns
one on its own, and are checked free and never handed out twice by a process.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL_LOW = 32768
_LOWEST = 10000
_ATTEMPTS = 200

_lock = threading.Lock()
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_LOW


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port on host that is free now and that the kernel will not give to anyone else."""
    high = _ephemeral_low() - 1
    if high <= _LOWEST:  # an unusual range: fall back to a kernel-chosen port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])
    with _lock:
        for _ in range(_ATTEMPTS):
            port = random.randint(_LOWEST, high)
            if port not in _handed_out and _bindable(host, port):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free port found between {_LOWEST} and {high}")
