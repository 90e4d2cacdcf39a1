"""Landing files: finding them, their partition keys and fingerprints.

A daily source names its files ``YYYY-MM-DD<suffix>`` (partition key ``YYYY-MM-DD``); a monthly
source ``YYYY-MM<suffix>`` (partition key ``YYYY-MM-01``, the first day of the month, which is
how Dagster's ``MonthlyPartitionsDefinition`` names its partitions). Files with any other name
are ignored (and reported by ``unexpected_files``) so that editors' backup files or a README never
become partitions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dagster_project.lib.ingest.contract import SourceContract

_DAILY_NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTHLY_NAME = re.compile(r"^(\d{4})-(\d{2})$")
HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class LandingFile:
    source: str
    path: Path  # absolute
    rel_path: str  # relative to the landing folder, with forward slashes: "claims/2024-01-02.csv"
    partition: str  # YYYY-MM-DD
    sha256: str
    bytes: int


def partition_of(contract: SourceContract, file_name: str) -> str | None:
    """The partition key a landing file name stands for, or None if the name does not fit."""
    if not file_name.endswith(contract.file_suffix):
        return None
    stem = file_name[: -len(contract.file_suffix)]
    if contract.partitioning == "monthly":
        m = _MONTHLY_NAME.match(stem)
        if not m:
            return None
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            return None
        return date(year, month, 1).isoformat()
    m = _DAILY_NAME.match(stem)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return None


def file_name_for(contract: SourceContract, partition_key: str) -> str:
    """The landing file name of a partition key (inverse of ``partition_of``)."""
    day = date.fromisoformat(partition_key)
    if contract.partitioning == "monthly":
        return f"{day:%Y-%m}{contract.file_suffix}"
    return f"{day.isoformat()}{contract.file_suffix}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
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
        stat = stat or path.stat()
        rel = path.relative_to(self.landing_dir).as_posix()
        known = self._entries.get(rel)
        if known and known[:3] == [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]:
            return known[3]
        digest = sha256_of(path)
        self._entries[rel] = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        """Write the cache atomically (a reader never sees half a file)."""
        if self.cache_file is None or not self._dirty:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_name(self.cache_file.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._entries, sort_keys=True, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self.cache_file)
        self._dirty = False


def landing_file(landing_dir: Path, contract: SourceContract, path: Path,
                 fingerprints: Fingerprints | None = None) -> LandingFile | None:
    partition = partition_of(contract, path.name)
    if partition is None:
        return None
    stat = path.stat()
    return LandingFile(
        source=contract.source,
        path=path.resolve(),
        rel_path=path.relative_to(landing_dir).as_posix(),
        partition=partition,
        sha256=fingerprints.sha256(path, stat) if fingerprints else sha256_of(path),
        bytes=stat.st_size,
    )


def candidate_paths(landing_dir: Path, contract: SourceContract) -> list[tuple[str, Path]]:
    """(partition, path) of every correctly named file of a source, by partition — no hashing."""
    folder = landing_dir / contract.folder
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if path.is_file():
            partition = partition_of(contract, path.name)
            if partition is not None:
                found.append((partition, path))
    return sorted(found)


def discover(landing_dir: Path, contract: SourceContract, partitions: set[str] | None = None,
             fingerprints: Fingerprints | None = None) -> list[LandingFile]:
    """Every landing file of a source (optionally only some partitions), sorted by partition."""
    files = []
    for partition, path in candidate_paths(landing_dir, contract):
        if partitions is None or partition in partitions:
            found = landing_file(landing_dir, contract, path, fingerprints)
            if found is not None:
                files.append(found)
    return files


def unexpected_files(landing_dir: Path, contract: SourceContract) -> list[Path]:
    folder = landing_dir / contract.folder
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and partition_of(contract, p.name) is None)
