"""The zhol-* gRPC metadata keys (the README's zhol-* table; docs/protocol.md, 'An IS and
its own gateway'): the wire names that an IS, the gateways, the adapters and the command
line all use, defined once here."""

from __future__ import annotations

# What an IS sends its own gateway with a call (and a provider gateway its IS).
CLIENT_KEY = "zhol-client"
PROVIDER_KEY = "zhol-provider"
USER_ID_KEY = "zhol-user-id"
PURPOSE_KEY = "zhol-purpose"
DATA_SUBJECT_KEY = "zhol-data-subject"
# What comes back in trailing metadata.
MESSAGE_ID_KEY = "zhol-message-id"
ERROR_KEY = "zhol-error"
ERROR_ID_KEY = "zhol-error-id"
# Gateway to gateway: a subscriber gateway's signed acknowledgement of an event its IS
# refused, in the trailers of the failed Exchange/Deliver call (docs/protocol.md).
SIGNED_ACK_KEY = "zhol-signed-ack-bin"

__all__ = [
    "CLIENT_KEY",
    "DATA_SUBJECT_KEY",
    "ERROR_ID_KEY",
    "ERROR_KEY",
    "MESSAGE_ID_KEY",
    "PROVIDER_KEY",
    "PURPOSE_KEY",
    "SIGNED_ACK_KEY",
    "USER_ID_KEY",
]
