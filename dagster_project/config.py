"""Where things live. One environment variable per location, defaults under ``data/``.

Relative values resolve against the repository root, never the current directory, so the CLI,
Dagster, dbt and the tests agree on the same files wherever they are started from.
"""

from __future__ import annotations

import os
import secrets
import sys
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"

# Telemetry off for every tool before any of them is imported by a caller of this module.
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DAGSTER_DISABLE_TELEMETRY": "true",
}
# A single-run backfill over N days would otherwise write one "materialization planned" event per
# asset *per day* into the instance's SQLite event log before the first step starts (46 assets x 730
# days = 33,580 writes, minutes of pure overhead); with this, one event per asset.
DAGSTER_RUN_SETTINGS = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}
for _key, _value in {**TELEMETRY_OFF, **DAGSTER_RUN_SETTINGS}.items():
    os.environ.setdefault(_key, _value)

WORK_DB_NAME = "work.duckdb"
PUBLISHED_DB_NAME = "published.duckdb"

# The default salt lives outside the repository so that it is never committed.
DEFAULT_SALT_FILE = Path.home() / ".config" / "cs-warehouse" / "pii_salt"


def resolve_path(value: str | os.PathLike[str]) -> Path:
    """Absolute path; relative values are taken from the repository root."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def _default_pii_salt() -> str:
    if DEFAULT_SALT_FILE.exists():
        return DEFAULT_SALT_FILE.read_text(encoding="utf-8").strip()
    DEFAULT_SALT_FILE.parent.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_hex(32)
    DEFAULT_SALT_FILE.write_text(salt + "\n", encoding="utf-8")
    os.chmod(DEFAULT_SALT_FILE, 0o600)
    warnings.warn(
        f"CSWH_PII_SALT is not set: generated a salt and stored it in {DEFAULT_SALT_FILE}. "
        "Set CSWH_PII_SALT in production so customer keys stay stable across machines.",
        stacklevel=3,
    )
    return salt


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    warehouse_dir: Path
    reports_dir: Path
    outbox_dir: Path
    dagster_home: Path
    pii_salt: str

    @property
    def work_db(self) -> Path:
        """The pipeline's read-write DuckDB file; nobody outside the pipeline opens it."""
        return self.warehouse_dir / WORK_DB_NAME

    @property
    def published_db(self) -> Path:
        """The file BI tools read; replaced atomically by publish."""
        return self.warehouse_dir / PUBLISHED_DB_NAME

    @property
    def fingerprints_file(self) -> Path:
        """The sha256 cache of the landing files (``ingest.landing.Fingerprints``)."""
        return self.warehouse_dir / "landing_fingerprints.json"

    @property
    def versions_dir(self) -> Path:
        return self.warehouse_dir / "versions"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        salt = env.get("CSWH_PII_SALT") or _default_pii_salt()
        return cls(
            landing_dir=resolve_path(env.get("CSWH_LANDING_DIR", "data/landing")),
            warehouse_dir=resolve_path(env.get("CSWH_WAREHOUSE_DIR", "data/warehouse")),
            reports_dir=resolve_path(env.get("CSWH_REPORTS_DIR", "data/reports")),
            outbox_dir=resolve_path(env.get("CSWH_OUTBOX_DIR", "data/outbox")),
            dagster_home=resolve_path(env.get("DAGSTER_HOME", "data/dagster_home")),
            pii_salt=salt,
        )

    def with_overrides(self, **changes) -> "Settings":
        return replace(self, **changes)

    def export_env(self) -> dict[str, str]:
        """The variables a child process (dbt, dagster dev, a test subprocess) needs to see the
        same files. dbt's profile reads CSWH_WORK_DB."""
        return {
            "CSWH_LANDING_DIR": str(self.landing_dir),
            "CSWH_WAREHOUSE_DIR": str(self.warehouse_dir),
            "CSWH_REPORTS_DIR": str(self.reports_dir),
            "CSWH_OUTBOX_DIR": str(self.outbox_dir),
            "CSWH_WORK_DB": str(self.work_db),
            "CSWH_PII_SALT": self.pii_salt,
            "DAGSTER_HOME": str(self.dagster_home),
            "CSWH_DUCKDB_MEMORY_LIMIT": duckdb_memory_limit(),
            **TELEMETRY_OFF,
            **DAGSTER_RUN_SETTINGS,
        }

    def apply_to_environ(self) -> None:
        os.environ.update(self.export_env())


# DuckDB's own default takes 80% of the machine's memory for its buffers; the pipeline shares the
# machine with the Dagster process and a dbt process, so its DuckDB connections get a budget.
# Above it DuckDB spills joins, aggregates and sorts to disk instead of growing (measured by the
# benchmark: scale 10 stays under 4 GiB for the whole process tree).
DEFAULT_DUCKDB_MEMORY_LIMIT = "3GB"


def duckdb_memory_limit(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("CSWH_DUCKDB_MEMORY_LIMIT") or DEFAULT_DUCKDB_MEMORY_LIMIT


def connect_work_db(path: Path | str, *, read_only: bool = False):
    """A DuckDB connection to the work file with the pipeline's settings. Every read-write
    connection in a process must use the same settings (DuckDB refuses a second in-process
    connection to a file with a different configuration), so they all come from here."""
    import duckdb

    return duckdb.connect(str(path), read_only=read_only, config={"memory_limit": duckdb_memory_limit()})


def ensure_dirs(settings: Settings) -> None:
    for path in (settings.landing_dir, settings.warehouse_dir, settings.reports_dir,
                 settings.outbox_dir, settings.versions_dir):
        path.mkdir(parents=True, exist_ok=True)


def eprint(*args, **kwargs) -> None:
    """Progress lines go to stderr so stdout stays a clean summary."""
    print(*args, file=sys.stderr, flush=True, **kwargs)
