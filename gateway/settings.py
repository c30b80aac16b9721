"""The gateway's frozen settings (DATA_DIR/gateway.toml, then ZHOL_GATEWAY_* variables)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zhol.core.cpupolicy import DEFAULT_CPU_POLICY
from zhol.core.errors import ZholError
from zhol.core.grpcruntime import GATEWAY_GRPC_EXPERIMENTS
from zhol.core.settings import load_settings

SETTINGS_FILE = "gateway.toml"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    data_dir: Path
    gateway_id: str
    registry_address: str
    # IS-facing listener (agency systems call this) and the gateway-to-gateway listener.
    is_listen: str = "127.0.0.1:0"
    peer_listen: str = "127.0.0.1:0"
    # IS connections: "plaintext" (loopback development), "tls", or "mtls" with pinned certs.
    is_tls: str = "plaintext"
    # Seconds between global configuration polls when the configuration does not say.
    conf_poll_s: float = 60.0
    # Passphrase for the private keys comes from this environment variable, if named.
    key_passphrase_env: str = ""
    # Exchanges with peer gateways on one multiplexed Exchange.CallStream per peer
    # (served and used; faster under load, measured), or each as a unary Exchange.Call.
    peer_call_stream: bool = True
    # gRPC core experiments the gateway process runs with ("" for gRPC's defaults);
    # a GRPC_EXPERIMENTS environment variable wins. See core/grpcruntime.py.
    grpc_experiments: str = GATEWAY_GRPC_EXPERIMENTS
    # "batch": helper threads' wake-ups do not preempt the event loop (Linux SCHED_BATCH;
    # less CPU per exchange, measured), or "normal". See core/cpupolicy.py.
    cpu_policy: str = DEFAULT_CPU_POLICY
    # "uvloop" (faster, measured) or "asyncio".
    event_loop: str = "uvloop"
    # Where to write the bound ports (the demo launcher reads them).
    port_file: Path | None = None
    # A signed checkpoint of the message log is due once the log grew and this many
    # seconds passed, or this many records were added, since the last one (and one
    # is signed when the gateway stops). See gateway/checkpoints.py.
    checkpoint_interval_s: float = 10.0
    checkpoint_every_records: int = 1000
    # RFC 3161 timestamps of the checkpoints (gateway/timestamping.py): once a checkpoint
    # waited this long for a token the gateway refuses exchanges (TimestampingFailed)
    # until a timestamp succeeds; untimestamped checkpoints are retried every
    # timestamp_interval_s, each request to an authority given timestamp_timeout_s.
    timestamp_limit_s: float = 14_400.0
    timestamp_interval_s: float = 5.0
    timestamp_timeout_s: float = 10.0

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def anchor_path(self) -> Path:
        return self.data_dir / "anchor.pem"

    @property
    def conf_cache_path(self) -> Path:
        return self.data_dir / "globalconf.bin"

    @property
    def local_db_path(self) -> Path:
        return self.data_dir / "local.db"

    @property
    def message_log_path(self) -> Path:
        return self.data_dir / "messagelog.db"

    @property
    def checkpoints_dir(self) -> Path:
        return self.data_dir / "checkpoints"


def load_gateway_settings(data_dir: Path, **overrides: object) -> GatewaySettings:
    return load_settings(
        GatewaySettings,
        data_dir / SETTINGS_FILE,
        prefix="ZHOL_GATEWAY_",
        overrides={"data_dir": data_dir, **overrides},
    )


def key_passphrase(env_name: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The private keys' passphrase, from the environment variable named env_name.

    This module and core.settings are the gateway's only readers of the environment.
    Only the variable's name is ever stored (gateway.toml) or reported; its value is not.
    """
    if not _ENV_NAME.match(env_name):
        # Not echoed: it may be the passphrase itself, given by mistake.
        raise ZholError(
            "InvalidRequest", "the passphrase variable must be named [A-Za-z_][A-Za-z0-9_]*"
        )
    value = (os.environ if environ is None else environ).get(env_name, "")
    if not value:
        raise ZholError(
            "NotConfigured",
            f"environment variable {env_name} must hold the passphrase of the gateway's keys",
        )
    return value.encode()
