"""The test process runs gRPC as the gateways do (core/grpcruntime.py), so in-process
federations exercise the configuration that ships. gRPC reads it when grpc is first
imported, which is after this file: pytest loads it before any test module."""

import os
import sys
import warnings

from zhol.core.grpcruntime import ENV_KEY, GATEWAY_GRPC_EXPERIMENTS, experiments_to_apply

_value = experiments_to_apply(GATEWAY_GRPC_EXPERIMENTS, os.environ)
if _value is not None:
    if "grpc" in sys.modules:
        warnings.warn("grpc imported before tests/conftest.py: gRPC defaults", stacklevel=1)
    os.environ[ENV_KEY] = _value
