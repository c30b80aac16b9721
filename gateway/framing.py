"""Batching for Exchange.CallStream: whatever is ready goes out in one frame.

Pure: no I/O. Under load many answers are ready at once, and one frame for all
of them costs the gRPC layer about what a single call costs; when only one is
ready it goes alone, so a lone call never waits for company.
"""

from __future__ import annotations

from collections import deque

from zhol.bus.v1 import bus_pb2

# A frame stops growing at this many calls or bytes; one call larger than the
# byte limit still travels, alone (the gateways' size limits apply to it as usual).
MAX_CALLS_PER_FRAME = 256
MAX_FRAME_BYTES = 1024 * 1024


def take_frame(
    ready: deque[bus_pb2.StreamedCall],
    max_calls: int = MAX_CALLS_PER_FRAME,
    max_bytes: int = MAX_FRAME_BYTES,
) -> bus_pb2.CallFrame:
    """Remove from ``ready`` (front first) the calls of the next frame; at least one."""
    if not ready:
        raise ValueError("nothing ready to frame")
    calls = [ready.popleft()]
    size = calls[0].ByteSize()
    while ready and len(calls) < max_calls:
        next_size = ready[0].ByteSize()
        if size + next_size > max_bytes:
            break
        calls.append(ready.popleft())
        size += next_size
    return bus_pb2.CallFrame(calls=calls)
