"""The landing boundary: which entries of the landing folder are landing files, their partition
keys and fingerprints (docs/ingest.md, "Landing boundary").

``list_landing`` is the one listing every caller uses (ingest, the CLI's run planner, the sensor):
it looks at names and ``lstat`` only — no hashing, no reading, no DuckDB — and sorts every entry
into *accepted* (a regular file whose name is exactly the contract's pattern and whose date lies
in the partitions' range) or *ignored*, with the reason:

- a symbolic link (to a file or a folder), anywhere: never followed, whatever it points at;
- a source folder that is itself a link, or is not a folder: none of its entries are read;
- anything that is not a regular file (a folder, a FIFO, a socket, a device);
- a name that is not the contract's pattern in ASCII exactly: ``YYYY-MM-DD<suffix>`` (daily) or
  ``YYYY-MM<suffix>`` (monthly), digits ``[0-9]`` only (full-width or other Unicode digits do not
  count), the suffix in its exact case (``.CSV`` is not ``.csv``), nothing before or after;
- a date that does not exist (2024-02-30) or lies outside the partitions: before the first
  partition (``$CSWH_PARTITIONS_START``, default 2024-01-01) or after today + ``FUTURE_TOLERANCE_DAYS``.

Entries at the top of the landing folder other than the source folders are ignored too, except
names starting with ``_`` or ``.`` (the sample-data generator's ``_truth.json`` / ``_defects.json``
describe the data set; they are not landing data).

A daily source names its files ``YYYY-MM-DD<suffix>`` (partition key ``YYYY-MM-DD``); a monthly
source ``YYYY-MM<suffix>`` (partition key ``YYYY-MM-01``, the first day of the month, which is
how Dagster's ``MonthlyPartitionsDefinition`` names its partitions).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat as stat_module
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

from dagster_project.lib.ingest.contract import SourceContract, registered_contracts
from dagster_project.lib.ingest.guard import FileChanged, open_no_follow, open_private_text, printable_name
from dagster_project.settings import partitions_start_setting

# ASCII digits only: Python's \d (and int()) accept every Unicode digit, which let
# "２０２５-12-30.csv" pass as a second file of the day 2025-12-30.
_DAILY_NAME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_MONTHLY_NAME = re.compile(r"([0-9]{4})-([0-9]{2})", re.ASCII)
HASH_CHUNK_BYTES = 1 << 20

PARTITIONS_START_VARIABLE = "CSWH_PARTITIONS_START"
DEFAULT_PARTITIONS_START = "2024-01-01"
# A landing day may be "today" in the source system's clock while it is still yesterday here (or
# a file is exported just after midnight): one day of tolerance; anything later is not a day the
# data can have yet.
FUTURE_TOLERANCE_DAYS = 1
LANDING_TIMEZONE = "Asia/Shanghai"  # landing days are local days


def partitions_start(env: Mapping[str, str] | None = None) -> date:
    """The first partition day (``$CSWH_PARTITIONS_START``, read by ``settings.py``)."""
    return date.fromisoformat(partitions_start_setting(env))


def local_today() -> date:
    return datetime.now(ZoneInfo(LANDING_TIMEZONE)).date()


@dataclass(frozen=True)
class LandingFile:
    source: str
    path: Path  # absolute (while a batch is read: a path through the open descriptor)
    rel_path: str  # relative to the landing folder, with forward slashes: "claims/2024-01-02.csv"
    partition: str  # YYYY-MM-DD
    sha256: str
    bytes: int
    # (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns) as listed: the file read must be this one
    identity: tuple[int, int, int, int, int] | None = None


@dataclass(frozen=True)
class AcceptedEntry:
    """A landing file inside the contract (not hashed yet)."""

    source: str
    path: Path
    rel_path: str
    partition: str
    stat: os.stat_result

    @property
    def identity(self) -> tuple[int, int, int, int, int]:
        s = self.stat
        return (s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)


@dataclass(frozen=True)
class IgnoredEntry:
    """An entry of the landing folder outside the contract, never read."""

    source: str | None  # None: an entry at the top of the landing folder
    rel_path: str  # printable (control characters and undecodable bytes escaped)
    partition: str | None  # the day its name stands for, if it has one
    reason: str


@dataclass
class LandingListing:
    accepted: list[AcceptedEntry] = field(default_factory=list)
    ignored: list[IgnoredEntry] = field(default_factory=list)

    def for_source(self, source: str) -> list[AcceptedEntry]:
        return [e for e in self.accepted if e.source == source]

    def ignored_for(self, source: str | None) -> list[IgnoredEntry]:
        return [e for e in self.ignored if e.source == source]


def _name_date(contract: SourceContract, file_name: str) -> tuple[str | None, str | None]:
    """(partition key, None) if the name fits the contract, else (partition or None, reason)."""
    suffix = contract.file_suffix
    stem_pattern = _MONTHLY_NAME if contract.partitioning == "monthly" else _DAILY_NAME
    shape = "YYYY-MM" if contract.partitioning == "monthly" else "YYYY-MM-DD"
    expected = f"the contract's name {shape}{suffix}"
    if not file_name.endswith(suffix):
        if file_name.lower().endswith(suffix.lower()):
            return None, f"suffix in the wrong case (expected {suffix!r}): {expected}"
        return None, f"name does not fit {expected}"
    stem = file_name[: -len(suffix)]
    m = stem_pattern.fullmatch(stem)
    if not m:
        if any(ch.isdigit() and not ch.isascii() for ch in stem):
            return None, f"non-ASCII digits in the name: {expected}"
        return None, f"name does not fit {expected}"
    year, month = int(m.group(1)), int(m.group(2))
    try:
        day = date(year, month, int(m.group(3)) if contract.partitioning == "daily" else 1)
    except ValueError:
        return None, f"no such date: {stem}"
    return day.isoformat(), None


def partition_of(contract: SourceContract, file_name: str) -> str | None:
    """The partition key a landing file name stands for, or None if the name does not fit
    (the date range is checked by ``list_landing``)."""
    return _name_date(contract, file_name)[0] if _name_date(contract, file_name)[1] is None else None


def file_name_for(contract: SourceContract, partition_key: str) -> str:
    """The landing file name of a partition key (inverse of ``partition_of``)."""
    day = date.fromisoformat(partition_key)
    if contract.partitioning == "monthly":
        return f"{day:%Y-%m}{contract.file_suffix}"
    return f"{day.isoformat()}{contract.file_suffix}"


def _range_reason(contract: SourceContract, partition: str, first_day: date, last_day: date) -> str | None:
    day = date.fromisoformat(partition)
    if contract.partitioning == "monthly":
        if day < first_day.replace(day=1):
            return f"dated {day:%Y-%m}, before the first partition {first_day:%Y-%m}"
        if day > last_day.replace(day=1):
            return f"dated {day:%Y-%m}, after the current month (today + {FUTURE_TOLERANCE_DAYS} day)"
        return None
    if day < first_day:
        return f"dated {day}, before the first partition {first_day}"
    if day > last_day:
        return f"dated {day}, in the future (after {last_day}: today + {FUTURE_TOLERANCE_DAYS} day)"
    return None


def _kind(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat_module.S_ISLNK(mode):
        return "a symbolic link (never followed)"
    if stat_module.S_ISDIR(mode):
        return "a folder, not a file"
    if stat_module.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file"
    if stat_module.S_ISSOCK(mode):
        return "a socket, not a regular file"
    if stat_module.S_ISCHR(mode) or stat_module.S_ISBLK(mode):
        return "a device, not a regular file"
    return "not a regular file"


def _rel(*parts: str) -> str:
    return "/".join(printable_name(p) for p in parts)


def list_landing(landing_dir: Path, contracts: Iterable[SourceContract] | None = None, *,
                 first_day: date | None = None, today: date | None = None) -> LandingListing:
    """Every entry of the landing folder, accepted or ignored with its reason (see the module
    docstring). Pure with respect to the warehouse: reads directory listings and ``lstat`` only.
    ``contracts`` defaults to every source; top-level entries are listed only then."""
    every = registered_contracts()
    landing_dir = Path(landing_dir)
    chosen = list(every.values()) if contracts is None else list(contracts)
    first_day = first_day or partitions_start()
    last_day = (today or local_today()) + timedelta(days=FUTURE_TOLERANCE_DAYS)
    listing = LandingListing()
    if not landing_dir.is_dir():
        return listing
    if contracts is None:
        folders = {c.folder for c in every.values()}
        with os.scandir(landing_dir) as entries:
            for entry in entries:
                if entry.name in folders or entry.name.startswith(("_", ".")):
                    continue
                reason = ("a symbolic link (never followed)" if entry.is_symlink()
                          else "not a source folder of the landing contract")
                listing.ignored.append(IgnoredEntry(None, _rel(entry.name), None, reason))
    for contract in chosen:
        folder = landing_dir / contract.folder
        try:
            folder_stat = os.lstat(folder)
        except FileNotFoundError:
            continue
        if not stat_module.S_ISDIR(folder_stat.st_mode):
            listing.ignored.append(IgnoredEntry(
                contract.source, _rel(contract.folder), None,
                f"the source folder is {_kind(folder_stat)}: none of its entries are read"))
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = _rel(contract.folder, entry.name)
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    listing.ignored.append(IgnoredEntry(contract.source, rel, None, "cannot be inspected"))
                    continue
                partition, reason = _name_date(contract, entry.name)
                if not stat_module.S_ISREG(st.st_mode):
                    reason = _kind(st)
                elif reason is None:
                    reason = _range_reason(contract, partition, first_day, last_day)
                if reason is not None:
                    listing.ignored.append(IgnoredEntry(contract.source, rel, partition, reason))
                    continue
                listing.accepted.append(AcceptedEntry(contract.source, Path(entry.path), rel, partition, st))
    listing.accepted.sort(key=lambda e: (e.source, e.partition))
    listing.ignored.sort(key=lambda e: (e.source or "", e.rel_path))
    return listing


def missing_days(listing: LandingListing, sources: Iterable[str]) -> dict[str, list[str]]:
    """Per daily source, the days between the first and the last landing day of all ``sources``
    that have no file of that source (a stated state, not a failure). Pure."""
    sources = list(sources)
    days_by_source = {s: {e.partition for e in listing.for_source(s)} for s in sources}
    every = set().union(*days_by_source.values()) if days_by_source else set()
    if not every:
        return {}
    first, last = date.fromisoformat(min(every)), date.fromisoformat(max(every))
    span = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    out = {s: [d for d in span if d not in days] for s, days in days_by_source.items()}
    return {s: d for s, d in out.items() if d}


# ------------------------------------------------------------------------------ hashing


def sha256_of(path: Path, identity: tuple[int, int, int, int, int] | None = None) -> str:
    """sha256 of a regular file, opened without following a link (and, given its listed
    identity, only if it is still that file)."""
    digest = hashlib.sha256()
    fd = open_no_follow(path)
    try:
        if identity is not None:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != identity:
                raise FileChanged("it changed after it was listed")
        with os.fdopen(os.dup(fd), "rb") as fh:
            while chunk := fh.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


class Fingerprints:
    """sha256 of landing files, re-hashed only when a file's size or mtime moved.

    Hashing is how a run tells a new or re-sent file from one already loaded (the ledger keeps
    each file's sha256), but reading every landing file to learn that nothing changed costs as
    much as reading it for the load: 1.3 GB for two years at scale 10. The cache remembers, per
    file, (size, mtime_ns, ctime_ns, sha256) in a JSON file next to the work file (the landing folder
    belongs to the source systems and is never written); a file whose size, mtime and ctime are
    those recorded keeps its recorded hash (ctime catches a rewrite that forged the mtime, as
    ``rsync -t`` or ``touch -r`` do). Without a cache file every file is hashed.
    """

    def __init__(self, landing_dir: Path, cache_file: Path | None = None):
        self.landing_dir = Path(landing_dir)
        self.cache_file = cache_file
        self._entries: dict[str, list] = {}
        self._dirty = False
        if cache_file is not None and cache_file.exists():
            try:
                self._entries = json.loads(cache_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._entries = {}  # a damaged cache only costs a re-hash

    def sha256(self, path: Path, stat: os.stat_result | None = None) -> str:
        stat = stat or os.lstat(path)
        rel = path.relative_to(self.landing_dir).as_posix()
        known = self._entries.get(rel)
        if known and known[:3] == [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]:
            return known[3]
        digest = sha256_of(path, (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))
        self._entries[rel] = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        """Write the cache atomically (a reader never sees half a file), owner-only."""
        if self.cache_file is None or not self._dirty:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_name(self.cache_file.name + f".{os.getpid()}.tmp")
        with open_private_text(tmp) as fh:
            fh.write(json.dumps(self._entries, sort_keys=True, separators=(",", ":")))
        os.replace(tmp, self.cache_file)
        self._dirty = False


def landing_file(entry: AcceptedEntry, fingerprints: Fingerprints | None = None) -> LandingFile | None:
    """The hashed landing file of an accepted entry (None if it changed or vanished meanwhile)."""
    try:
        sha = fingerprints.sha256(entry.path, entry.stat) if fingerprints else sha256_of(entry.path, entry.identity)
    except (FileChanged, OSError):
        return None
    return LandingFile(source=entry.source, path=entry.path, rel_path=entry.rel_path, partition=entry.partition,
                       sha256=sha, bytes=entry.stat.st_size, identity=entry.identity)


def candidate_paths(landing_dir: Path, contract: SourceContract) -> list[tuple[str, Path]]:
    """(partition, path) of every accepted file of a source, by partition — no hashing."""
    return [(e.partition, e.path) for e in list_landing(landing_dir, [contract]).accepted]


def discover(landing_dir: Path, contract: SourceContract, partitions: set[str] | None = None,
             fingerprints: Fingerprints | None = None, listing: LandingListing | None = None) -> list[LandingFile]:
    """Every accepted landing file of a source (optionally only some partitions), sorted by partition."""
    listing = listing or list_landing(landing_dir, [contract])
    files = []
    for entry in listing.for_source(contract.source):
        if partitions is None or entry.partition in partitions:
            found = landing_file(entry, fingerprints)
            if found is not None:
                files.append(found)
    return files


def unexpected_files(landing_dir: Path, contract: SourceContract) -> list[str]:
    """Printable relative paths of the ignored entries of a source folder."""
    return [e.rel_path for e in list_landing(landing_dir, [contract]).ignored]
