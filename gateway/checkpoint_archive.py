"""Archiving a gateway's checkpoint files by UTC day (docs/operators.md, "checkpoints/").

A busy gateway writes a checkpoint every few seconds, four files each: a day's worth is
packed into ONE plain POSIX (ustar) tar, ``checkpoints/checkpoints-YYYY-MM-DD.tar``,
whose members are the original files under their original names, bytes unchanged (so
``tar -xf`` gives back what openssl and C2SP verifiers read). The archive is written
atomically (temp file, fsync, rename), read back and compared member by member, and
only then are the packed originals removed: a crash at any point leaves the originals,
the archive, or both, and readers (:func:`checkpoint_files`) accept both when their
bytes are equal.

A checkpoint is packed only when its day (the note's modification time, UTC) is over
and its work is finished: it has its ``.tsr`` and ``.cosig``, or it was written more
than ``incomplete_after_ms`` ago (a missing witness or authority cannot block archiving
for ever). The newest checkpoint and those holding the largest ``.tsr`` and ``.cosig``
are never packed: the checkpointer, the timestamper and the witness client start from
them when the gateway starts.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from zhol.gateway.checkpoints import NOTE_SUFFIX, size_in_name

ARCHIVE_PREFIX = "checkpoints-"
ARCHIVE_SUFFIX = ".tar"
SUFFIXES = (NOTE_SUFFIX, ".proof", ".tsr", ".cosig")
INCOMPLETE_AFTER_DAYS = 7
DAY_MS = 86_400_000


class ArchiveError(Exception):
    """An archive that cannot be read, or that disagrees with a loose file."""


@dataclass(frozen=True, slots=True)
class LooseCheckpoint:
    """What selection needs of one checkpoint kept as loose files."""

    size: int
    written_ms: int  # the note's modification time
    timestamped: bool
    cosigned: bool


def day_of(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


def archive_name(day: date) -> str:
    return f"{ARCHIVE_PREFIX}{day.isoformat()}{ARCHIVE_SUFFIX}"


def is_archive_name(name: str) -> bool:
    if not (name.startswith(ARCHIVE_PREFIX) and name.endswith(ARCHIVE_SUFFIX)):
        return False
    try:
        date.fromisoformat(name[len(ARCHIVE_PREFIX) : -len(ARCHIVE_SUFFIX)])
    except ValueError:
        return False
    return True


def select_for_archive(
    checkpoints: Iterable[LooseCheckpoint],
    *,
    now_ms: int,
    before: date,
    incomplete_after_ms: int = INCOMPLETE_AFTER_DAYS * DAY_MS,
) -> dict[date, list[int]]:
    """The sizes that may be packed, by UTC day: days before ``before`` and before
    today, work finished (token and cosignature, or written ``incomplete_after_ms``
    ago), never the newest nor the one with the largest token or cosignature."""
    cps = list(checkpoints)
    if not cps:
        return {}
    keep = {max(c.size for c in cps)}
    keep |= {max((c.size for c in cps if c.timestamped), default=0)}
    keep |= {max((c.size for c in cps if c.cosigned), default=0)}
    until = min(before, day_of(now_ms))
    chosen: dict[date, list[int]] = {}
    for c in sorted(cps, key=lambda c: c.size):
        day = day_of(c.written_ms)
        finished = (c.timestamped and c.cosigned) or now_ms - c.written_ms >= incomplete_after_ms
        if c.size not in keep and day < until and finished:
            chosen.setdefault(day, []).append(c.size)
    return chosen


def file_name(size: int, suffix: str) -> str:
    return f"{size:020d}{suffix}"


def read_archive(path: Path) -> dict[str, bytes]:
    """The members of one archive (regular files only), by name."""
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for info in tar:
                if not info.isfile() or "/" in info.name:
                    raise ArchiveError(f"{path.name}: unexpected member {info.name!r}")
                data = tar.extractfile(info)
                assert data is not None
                members[info.name] = data.read()
    except (OSError, tarfile.TarError) as exc:
        raise ArchiveError(f"cannot read {path.name}: {exc}") from None
    return members


def archive_paths(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if is_archive_name(p.name))


def checkpoint_files(directory: Path) -> dict[str, bytes]:
    """Every checkpoint file (``<size>.note``, ``.proof``, ``.tsr``, ``.cosig``), loose or
    archived, by name. A name both loose and archived (a crash before the originals were
    removed) must have the same bytes in both: ArchiveError otherwise, or when an
    archive cannot be read; OSError when a loose file cannot."""
    files: dict[str, bytes] = {}
    for archive in archive_paths(directory):
        for name, data in read_archive(archive).items():
            if files.setdefault(name, data) != data:
                raise ArchiveError(f"{name}: two archives hold different bytes")
    if directory.is_dir():
        with os.scandir(directory) as entries:
            for entry in entries:
                if not any(size_in_name(entry.name, s) is not None for s in SUFFIXES):
                    continue
                data = Path(entry.path).read_bytes()
                if files.setdefault(entry.name, data) != data:
                    raise ArchiveError(f"{entry.name}: the loose file and its archived copy differ")
    return files


def loose_checkpoints(directory: Path) -> list[LooseCheckpoint]:
    names = set(os.listdir(directory)) if directory.is_dir() else set()
    found: list[LooseCheckpoint] = []
    for name in names:
        size = size_in_name(name, NOTE_SUFFIX)
        if size is None:
            continue
        written = (directory / name).stat().st_mtime_ns // 1_000_000
        found.append(
            LooseCheckpoint(
                size,
                written,
                file_name(size, ".tsr") in names,
                file_name(size, ".cosig") in names,
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class Packed:
    """One day's archive: ``checkpoints`` packed now, ``files`` loose files removed."""

    day: date
    archive: str
    checkpoints: int
    files: int


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_tar(path: Path, members: Mapping[str, tuple[bytes, int]]) -> None:
    """A ustar archive of ``members`` (name -> bytes, mtime in s), atomically, 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name in sorted(members):
                data, mtime = members[name]
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), mtime, 0o600
                tar.addfile(info, io.BytesIO(data))
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


def archive_day(directory: Path, day: date, sizes: Iterable[int], *, dry_run: bool) -> Packed:
    """Pack ``sizes``' files into the day's archive (with what it held already), verify
    it by reading it back, then remove the originals. ArchiveError when a loose file
    differs from an archived copy, or the archive does not read back the same."""
    path = directory / archive_name(day)
    held = read_archive(path) if path.exists() else {}
    members: dict[str, tuple[bytes, int]] = {n: (d, 0) for n, d in held.items()}
    if held:  # keep the members' times
        with tarfile.open(path, mode="r:") as tar:
            for info in tar:
                members[info.name] = (held[info.name], int(info.mtime))
    loose: list[Path] = []
    count = 0
    for size in sizes:
        count += 1
        for suffix in SUFFIXES:
            p = directory / file_name(size, suffix)
            try:
                data, mtime = p.read_bytes(), int(p.stat().st_mtime)
            except FileNotFoundError:
                continue
            if p.name in held and held[p.name] != data:
                raise ArchiveError(f"{p.name}: the loose file and its archived copy differ")
            members.setdefault(p.name, (data, mtime))
            loose.append(p)
    if dry_run or not loose:
        return Packed(day, path.name, count, len(loose))
    if set(members) != set(held):
        _write_tar(path, members)
    back = read_archive(path)
    if any(back.get(name) != data for name, (data, _) in members.items()):
        raise ArchiveError(f"{path.name} does not read back as written; originals kept")
    for p in loose:
        p.unlink()
    _fsync_dir(directory)
    return Packed(day, path.name, count, len(loose))


def archive_checkpoints(
    directory: Path,
    *,
    now_ms: int,
    before: date,
    incomplete_after_ms: int = INCOMPLETE_AFTER_DAYS * DAY_MS,
    dry_run: bool = False,
) -> list[Packed]:
    """Archive every closed day's finished checkpoints (:func:`select_for_archive`)."""
    chosen = select_for_archive(
        loose_checkpoints(directory),
        now_ms=now_ms,
        before=before,
        incomplete_after_ms=incomplete_after_ms,
    )
    return [archive_day(directory, d, chosen[d], dry_run=dry_run) for d in sorted(chosen)]
