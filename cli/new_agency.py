"""`zhol new-agency NAME --lang python|node`: a new agency subsystem's starting point.

It writes, into a new folder, the subsystem's contract (``NAME.proto``: one service with
one method whose request marks the IIN with ``(zhol.bus.v1.data_subject)``, and one
event message), a provider of that contract, a client calling population through its own
gateway, an event receiver, an event publisher and ``join.sh`` (init, add-subsystem,
events sink, serve against a running federation). The templates are package data
(``zhol/cli/scaffold/``); the bus's own ``.proto`` files they need are copied from the
installed package (``protos/generate.py`` puts them beside the generated code).
docs/scaffold.md describes the result.
"""

from __future__ import annotations

import argparse
import importlib.resources
import importlib.util
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_OK, report
from zhol.core.ids import GatewayId, MemberId, SubsystemId

LANGUAGES = ("python", "node")
# A lower-case protobuf identifier: NAME is the subsystem code, the proto package's middle
# part (zhol.NAME.v1), the .proto's file name and, for Python, the generated module's.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_SERVICE = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
# The bus's own files each language's programs load or compile against.
_BUS_PROTOS: Mapping[str, tuple[str, ...]] = {
    # options.proto: protoc needs it to regenerate NAME_pb2.py after an edit.
    "python": ("zhol/bus/v1/options.proto",),
    # Loaded at run time by @grpc/proto-loader: the contract's import, EventSink/Events,
    # and population's contract for the client.
    "node": (
        "zhol/bus/v1/options.proto",
        "zhol/bus/v1/bus.proto",
        "zhol/population/v1/population.proto",
    ),
}
EXECUTABLE = frozenset({"join.sh"})


@dataclass(frozen=True, slots=True)
class AgencySpec:
    """What the scaffold is written for, every part checked."""

    name: str
    member: MemberId
    gateway: GatewayId
    service: str
    lang: str

    @property
    def subsystem(self) -> SubsystemId:
        return SubsystemId(self.member, self.name)

    @property
    def package(self) -> str:
        return f"zhol.{self.name}.v1"

    def values(self) -> dict[str, str]:
        """Every placeholder the templates use, by name."""
        return {
            "name": self.name,
            "member": str(self.member),
            "member_code": self.member.member_code,
            "subsystem": str(self.subsystem),
            "gateway_id": str(self.gateway),
            "gateway_code": self.gateway.server_code,
            "package": self.package,
            "service": self.service,
            "full_service": f"{self.package}.{self.service}",
            "topic": f"{self.package}.RecordUpdated",
            "proto_file": f"{self.name}.proto",
        }


def default_service(name: str) -> str:
    """``taxes`` -> ``TaxesRegistry``, ``land_cadastre`` -> ``LandCadastreRegistry``."""
    return "".join(part.capitalize() for part in name.split("_") if part) + "Registry"


def agency_spec(
    name: str, member: str, lang: str, gateway: str | None = None, service: str | None = None
) -> AgencySpec:
    """The checked spec; InvalidIdentifier for a bad name, member, gateway or service,
    InvalidRequest for an unknown language. Pure: nothing is read or written."""
    if not _NAME.fullmatch(name):
        raise ZholError(
            "InvalidIdentifier",
            f"NAME {name[:80]!r}: a lower-case identifier (a-z, 0-9, _; a letter first; "
            "at most 40), used as the subsystem code and in the proto package zhol.NAME.v1",
        )
    member_id = MemberId.parse(member)
    subsystem = SubsystemId.parse(f"{member_id}/{name}")
    gateway_id = GatewayId.parse(gateway) if gateway else GatewayId(member_id, "gw1")
    if gateway_id.member != member_id:
        raise ZholError(
            "InvalidIdentifier", f"--gateway-id {gateway_id} is not a gateway of {member_id}"
        )
    service_name = service or default_service(name)
    if not _SERVICE.fullmatch(service_name):
        raise ZholError(
            "InvalidIdentifier",
            f"--service {service_name[:80]!r}: a protobuf service name (A-Z first, then "
            "letters and digits)",
        )
    if lang not in LANGUAGES:
        raise ZholError("InvalidRequest", f"--lang {lang!r}: one of {', '.join(LANGUAGES)}")
    return AgencySpec(subsystem.subsystem_code, member_id, gateway_id, service_name, lang)


def substitute(template: str, values: Mapping[str, str], where: str = "") -> str:
    """``{{key}}`` replaced by ``values[key]``; a key the values lack is a bug (KeyError)."""

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"{where}: unknown placeholder {{{{{key}}}}}")
        return values[key]

    return _PLACEHOLDER.sub(one, template)


def _templates() -> Traversable:
    return importlib.resources.files("zhol.cli") / "scaffold"


def _bus_proto(relative: str) -> bytes:
    """A bus .proto from the installed package (beside zhol.bus.v1's generated code)."""
    *package, file = relative.split("/")
    return (importlib.resources.files(".".join(package)) / file).read_bytes()


def render(spec: AgencySpec) -> dict[str, bytes]:
    """Every file to write, by its path relative to the output folder."""
    values = spec.values()
    files: dict[str, bytes] = {}
    for folder in ("common", spec.lang):
        for entry in sorted(_templates().joinpath(folder).iterdir(), key=lambda e: e.name):
            if not entry.name.endswith(".tmpl"):
                continue
            target = entry.name.removesuffix(".tmpl")
            if target == "service.proto":
                target = values["proto_file"]
            files[target] = substitute(entry.read_text("utf-8"), values, entry.name).encode()
    for relative in _BUS_PROTOS[spec.lang]:
        files[f"protos/{relative}"] = _bus_proto(relative)
    return files


def check_output(out: Path) -> None:
    """OutputExists unless ``out`` is absent or an empty folder."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ZholError("OutputExists", f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise ZholError("OutputExists", f"--out {out}: not empty (nothing written)")


def _generate_python(folder: Path, proto_file: str) -> None:
    """NAME_pb2.py and NAME_pb2_grpc.py, as README.md says to regenerate them."""
    from grpc_tools import protoc  # imported here: loading protoc costs ~100 ms

    well_known = importlib.resources.files("grpc_tools") / "_proto"
    status = protoc.main(
        [
            "protoc",
            f"-I{folder}",
            f"-I{folder / 'protos'}",
            f"-I{well_known}",
            f"--python_out={folder}",
            f"--grpc_python_out={folder}",
            str(folder / proto_file),
        ]
    )
    if status != 0:  # the templates compile (tested): only a broken installation gets here
        raise ZholError("InternalError", f"protoc could not compile {proto_file}")


def write_agency(spec: AgencySpec, out: Path) -> list[str]:
    """Write the scaffold into ``out`` (absent or empty), all or nothing; the paths written.

    The files are put together in a temporary folder beside ``out`` and moved into place
    at the end, so a refusal or failure leaves ``out`` as it was."""
    check_output(out)
    files = render(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    staging = scratch / "agency"  # made with the user's umask (mkdtemp's is 0700)
    try:
        staging.mkdir()
        for relative, content in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            if relative in EXECUTABLE:
                path.chmod(0o755)
        if spec.lang == "python":
            _generate_python(staging, spec.values()["proto_file"])
        check_output(out)  # again: nothing appeared there meanwhile
        if out.is_dir():
            out.rmdir()
        os.replace(staging, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def _reserved(name: str) -> bool:
    """A name of one of the bus's own packages (zhol.bus.v1, zhol.population.v1, ...)."""
    return importlib.util.find_spec(f"zhol.{name}") is not None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "new-agency",
        help="write a new agency subsystem's starting point: its .proto, a provider, a "
        "client, an event receiver and publisher, and join.sh (docs/scaffold.md)",
        description="Write into a new folder a working starting point for subsystem "
        "MEMBER/NAME: NAME.proto (package zhol.NAME.v1: a service with one method whose "
        "request marks the IIN with (zhol.bus.v1.data_subject), and the event message "
        "RecordUpdated), provider, client (GetPerson at population through the "
        "subsystem's own gateway), receiver (zhol.bus.v1.EventSink), publish "
        "(zhol.bus.v1.Events/Publish), join.sh (zhol gateway init, add-subsystem, "
        "events sink and serve against a running federation) and README.md.",
        epilog="Every program takes --help. join.sh reads REGISTRY and ANCHOR (and "
        "optionally ZHOL, MEMBER, GATEWAY_ID, GATEWAY_DIR, PEER_ADDRESS, IS_LISTEN, "
        "PROVIDER_ADDRESS, RECEIVER_ADDRESS, PORT_FILE) from the environment. Nothing is "
        "written when an argument is refused or --out is a non-empty folder.",
    )
    p.add_argument(
        "name",
        metavar="NAME",
        help="the subsystem code, e.g. taxes: lower case, a letter first, then letters, "
        "digits and _ (also the proto package zhol.NAME.v1 and the file NAME.proto)",
    )
    p.add_argument(
        "--member",
        required=True,
        help="the member the subsystem belongs to, INSTANCE/CLASS/CODE, e.g. KZ/GOV/SRC",
    )
    p.add_argument(
        "--lang",
        choices=LANGUAGES,
        default="python",
        help="the language of the provider, client, receiver and publisher: python "
        "(grpcio, code generated into the folder) or node (@grpc/grpc-js and "
        "@grpc/proto-loader, the .proto loaded at run time) (default %(default)s)",
    )
    p.add_argument(
        "--gateway-id",
        help="the member's gateway join.sh creates, e.g. KZ/GOV/SRC/gw1 (default MEMBER/gw1)",
    )
    p.add_argument(
        "--service",
        help="the gRPC service's name in zhol.NAME.v1 (default: NAME in CamelCase + "
        "Registry, e.g. TaxesRegistry)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="the folder to write; must be absent or empty (default ./NAME)",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        spec = agency_spec(args.name, args.member, args.lang, args.gateway_id, args.service)
        if _reserved(spec.name):
            raise ZholError(
                "InvalidIdentifier",
                f"NAME {spec.name!r}: zhol.{spec.name} is one of the bus's own packages",
            )
        out = args.out if args.out is not None else Path(spec.name)
        written = write_agency(spec, out)
    except ZholError as err:
        return report(err)
    print(f"wrote {len(written)} files for {spec.subsystem} ({spec.lang}) in {out}:")
    for path in written:
        print(f"  {path}")
    print(f"next: {out / 'README.md'}")
    return EXIT_OK
