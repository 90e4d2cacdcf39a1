"""Landing files: finding them, their partition keys and fingerprints.

A daily source names its files ``YYYY-MM-DD<suffix>`` (partition key ``YYYY-MM-DD``); a monthly
source ``YYYY-MM<suffix>`` (partition key ``YYYY-MM-01``, the first day of the month, which is
how Dagster's ``MonthlyPartitionsDefinition`` names its partitions). Files with any other name
are ignored (and reported by ``unexpected_files``) so that editors' backup files or a README never
become partitions.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dagster_project.ingest.contract import SourceContract

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


def landing_file(landing_dir: Path, contract: SourceContract, path: Path) -> LandingFile | None:
    partition = partition_of(contract, path.name)
    if partition is None:
        return None
    return LandingFile(
        source=contract.source,
        path=path.resolve(),
        rel_path=path.relative_to(landing_dir).as_posix(),
        partition=partition,
        sha256=sha256_of(path),
        bytes=path.stat().st_size,
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


def discover(landing_dir: Path, contract: SourceContract, partitions: set[str] | None = None) -> list[LandingFile]:
    """Every landing file of a source (optionally only some partitions), sorted by partition."""
    files = []
    for partition, path in candidate_paths(landing_dir, contract):
        if partitions is None or partition in partitions:
            found = landing_file(landing_dir, contract, path)
            if found is not None:
                files.append(found)
    return files


def unexpected_files(landing_dir: Path, contract: SourceContract) -> list[Path]:
    folder = landing_dir / contract.folder
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and partition_of(contract, p.name) is None)
