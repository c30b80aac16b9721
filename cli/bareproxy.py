"""A do-nothing pair of gRPC proxies: the benchmark's floor for two hops.

`zhol bench` runs two of these as their own processes, laid out like the bus: the
consumer proxy takes plaintext calls on loopback and forwards the raw bytes over
mutual TLS (the two gateways' own authentication keys) to the provider proxy, which
forwards them in plaintext to the population adapter. No signing, no verification,
no message log, no access rights: what is left is the cost of grpc.aio carrying a
call twice. Comparing the bus with this floor, in the same run, says how much of the
bus's price is our own work and how much is the gRPC layer any two-hop design pays.

Not part of the bus and never to be deployed: ``python -m zhol.cli.bareproxy``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import grpc
import uvloop

from zhol.core.cpupolicy import DEFAULT_CPU_POLICY, apply_cpu_policy
from zhol.core.grpcruntime import GATEWAY_GRPC_EXPERIMENTS, ensure_grpc_experiments
from zhol.gateway.credentials import AUTH_CERT, AUTH_KEY, CA_CERT
from zhol.security.ca import auth_dns_name

_LIMIT = 4 * 1024 * 1024
_OPTIONS = (
    ("grpc.max_receive_message_length", _LIMIT),
    ("grpc.max_send_message_length", _LIMIT),
)


class Forwarder(grpc.GenericRpcHandler):
    """Every unary method, forwarded as bytes with its metadata and deadline."""

    def __init__(self, upstream: grpc.aio.Channel) -> None:
        self._upstream = upstream
        self._calls: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        call = self._calls.get(method)
        if call is None:
            call = self._calls[method] = self._upstream.unary_unary(method)

        async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                return await call(
                    request,
                    metadata=tuple(context.invocation_metadata() or ()),
                    timeout=context.time_remaining(),
                )
            except grpc.aio.AioRpcError as err:  # the upstream's status, passed on as is
                context.set_trailing_metadata(err.trailing_metadata() or ())
                await context.abort(err.code(), err.details() or "")
                raise  # abort raises; this keeps the type checker honest

        return grpc.unary_unary_rpc_method_handler(forward)


def _keys(keys_dir: Path) -> tuple[bytes, bytes, bytes]:
    return (
        (keys_dir / AUTH_KEY).read_bytes(),
        (keys_dir / AUTH_CERT).read_bytes(),
        (keys_dir / CA_CERT).read_bytes(),
    )


def _upstream(args: argparse.Namespace) -> grpc.aio.Channel:
    if args.upstream_keys is None:
        return grpc.aio.insecure_channel(args.upstream, options=_OPTIONS)
    key, cert, ca = _keys(args.upstream_keys)
    credentials = grpc.ssl_channel_credentials(ca, key, cert)
    override = (("grpc.ssl_target_name_override", auth_dns_name(args.upstream_gateway)),)
    return grpc.aio.secure_channel(args.upstream, credentials, options=_OPTIONS + override)


async def serve(args: argparse.Namespace) -> None:
    upstream = _upstream(args)
    server = grpc.aio.server(
        handlers=[Forwarder(upstream)], options=[*_OPTIONS, ("grpc.so_reuseport", 0)]
    )
    if args.listen_keys is None:
        port = server.add_insecure_port(args.listen)
    else:
        key, cert, ca = _keys(args.listen_keys)
        credentials = grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=True
        )
        port = server.add_secure_port(args.listen, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {args.listen}")
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop(1)
    await upstream.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zhol.cli.bareproxy", description=__doc__)
    parser.add_argument("--listen", required=True, help="host:port to accept calls on")
    parser.add_argument("--listen-keys", type=Path, help="keys dir: accept mutual TLS")
    parser.add_argument("--upstream", required=True, help="host:port to forward to")
    parser.add_argument("--upstream-keys", type=Path, help="keys dir: forward over mutual TLS")
    parser.add_argument("--upstream-gateway", default="", help="gateway id the upstream is")
    args = parser.parse_args(argv)
    ensure_grpc_experiments(GATEWAY_GRPC_EXPERIMENTS)  # gRPC as the gateways run it
    apply_cpu_policy(DEFAULT_CPU_POLICY)  # scheduled as the gateways are
    uvloop.run(serve(args))  # as the gateways run
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
