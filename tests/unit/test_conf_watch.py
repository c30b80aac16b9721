"""The configuration watch's pure rules: reconnect backoff, the standing of a
configuration in error details, and which refusals carry it."""

from __future__ import annotations

import datetime as dt

from zhol.core.errors import Hop, ZholError
from zhol.gateway.confsource import CONF_LOOKUP_CODES, RETRY_JITTER, RETRY_S, standing_text
from zhol.gateway.confwatch import FIRST_RETRY_S, reconnect_delay_s


def test_the_watch_reconnects_soon_then_at_most_every_retry_interval() -> None:
    assert reconnect_delay_s(1, 0.0) == FIRST_RETRY_S
    assert reconnect_delay_s(2, 0.0) == 2 * FIRST_RETRY_S
    assert reconnect_delay_s(50, 0.0) == RETRY_S
    assert reconnect_delay_s(50, 1.0) == RETRY_S * (1 + RETRY_JITTER)
    assert reconnect_delay_s(50, 1.0) < 5.0  # within the 5 s for a new registration


def test_standing_names_the_version_its_time_and_its_age() -> None:
    generated = int(dt.datetime(2026, 12, 5, 3, 30, tzinfo=dt.UTC).timestamp() * 1000)
    text = standing_text(42, generated, generated + 12_400)
    assert text == "configuration version 42 from 2026-12-05T03:30:00Z, 12 s old"
    assert standing_text(42, generated, generated - 5_000).endswith(", 0 s old")


def test_lookup_refusals_are_the_ones_explained() -> None:
    assert {"UnknownService", "UnknownSubsystem", "UnknownClient"} <= CONF_LOOKUP_CODES
    for name in CONF_LOOKUP_CODES:
        ZholError(name, hop=Hop.CLIENT_PROXY)  # every one is catalogued
    assert "AccessDenied" not in CONF_LOOKUP_CODES  # a provider's decision, not a lookup
