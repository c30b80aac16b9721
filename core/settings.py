"""One frozen settings dataclass per process: TOML file, then ZHOL_* environment.

``load_settings(GatewaySettings, path, prefix="ZHOL_GATEWAY_")`` reads the TOML
table, overrides each field from ``ZHOL_GATEWAY_<FIELD>`` when set, converts to
the field's type and returns the frozen instance. The only place that reads
os.environ for settings (with the gateway's and the registry's passphrase readers, and
child_environment for the processes a launcher starts).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance  # typing only: no such module at run time

T = TypeVar("T", bound="DataclassInstance")  # a frozen settings dataclass


def _convert(value: Any, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None or value == "":
            return None
        return _convert(value, args[0])
    if kind is bool:
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return bool(value)
    if kind is Path:
        return Path(value)
    if kind in (int, float, str):
        return kind(value)
    if origin in (tuple, list):
        items = value.split(",") if isinstance(value, str) else list(value)
        (inner, *_) = typing.get_args(kind) or (str,)
        return tuple(_convert(i, inner) for i in items if i != "")
    return value


def load_settings(
    cls: type[T],
    path: Path | None = None,
    *,
    prefix: str,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> T:
    """Build ``cls`` from TOML (if path exists), then environment, then explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path is not None and path.exists():
        values.update(tomllib.loads(path.read_text(encoding="utf-8")))
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        env_key = prefix + field.name.upper()
        if env_key in environ:
            values[field.name] = environ[env_key]
    if overrides:
        values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown settings for {cls.__name__}: {sorted(unknown)}")
    converted = {name: _convert(value, hints[name]) for name, value in values.items()}
    return cls(**converted)


def dump_toml(values: Mapping[str, Any]) -> str:
    """Write a flat mapping of str/int/float/bool/path/tuple values as TOML."""
    lines = []
    for key, value in values.items():
        if value is None:
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child process starts with: this process's, plus ``extra``."""
    return {**os.environ, **(extra or {})}
