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
try:
    DEFAULT_SALT_FILE = Path.home() / ".config" / "cs-warehouse" / "pii_salt"
except RuntimeError:  # no HOME and no passwd entry: reported when the salt is needed
    DEFAULT_SALT_FILE = Path("~") / ".config" / "cs-warehouse" / "pii_salt"
# A salt an attacker can enumerate makes customer_key reversible (sha256('|' || customer_id) for an
# empty one): at least this many characters. The generated default has 64 hex characters.
MIN_SALT_CHARS = 16


def resolve_path(value: str | os.PathLike[str]) -> Path:
    """Absolute path; relative values are taken from the repository root."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


class ConfigurationError(Exception):
    """A setting that makes a run impossible; the message says what to fix (exit code 2)."""

    exit_code = 2


def validate_salt(salt: str | None, origin: str) -> str:
    """The salt, stripped, if it is long enough; else ConfigurationError naming ``origin``."""
    text = (salt or "").strip()
    if not text:
        raise ConfigurationError(f"{origin} is empty: an empty salt makes every customer_key an unsalted "
                                 "hash of the customer id (reversible). Set CSWH_PII_SALT to a long random "
                                 "value (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`).")
    if len(text) < MIN_SALT_CHARS:
        raise ConfigurationError(f"{origin} has {len(text)} characters, fewer than {MIN_SALT_CHARS}: too short "
                                 "to keep customer keys from being reversed by enumeration. Use a long random "
                                 "value.")
    return text


def _default_pii_salt() -> str:
    """The salt of ``DEFAULT_SALT_FILE``, generated on first use. The file is created with mode
    0600 in one step (``O_CREAT | O_EXCL``), never written world-readable and chmodded later."""
    path = DEFAULT_SALT_FILE
    home = path.parent.parent.parent
    try:
        if path.exists():
            return validate_salt(path.read_text(encoding="utf-8"), f"the salt file {path}")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        salt = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:  # another process created it meanwhile: use that one
            return validate_salt(path.read_text(encoding="utf-8"), f"the salt file {path}")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(salt + "\n")
    except (NotADirectoryError, FileNotFoundError, PermissionError, IsADirectoryError, OSError) as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(
            f"CSWH_PII_SALT is not set and the default salt file {path} cannot be used "
            f"({os.strerror(exc.errno) if getattr(exc, 'errno', None) else type(exc).__name__}; is HOME={home} "
            "a writable directory?). Set CSWH_PII_SALT, or point HOME at your home directory.") from None
    warnings.warn(
        f"CSWH_PII_SALT is not set: generated a salt and stored it in {path}. "
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
        if env.get("CSWH_PII_SALT") is not None:
            salt = validate_salt(env["CSWH_PII_SALT"], "CSWH_PII_SALT")
        else:
            salt = _default_pii_salt()
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
            MEMORY_BUDGET_VARIABLE: duckdb_memory_limit(landing_dir=self.landing_dir),
            **TELEMETRY_OFF,
            **DAGSTER_RUN_SETTINGS,
        }

    def apply_to_environ(self) -> None:
        os.environ.update(self.export_env())


# DuckDB's own default takes 80% of the machine's memory for its buffers; the pipeline shares the
# machine with the Dagster process, a dbt process and BI readers, so its DuckDB databases get a
# budget that follows the data: half the size of the landing files, at least 3 GiB, at most half
# the machine. Above it DuckDB spills joins, aggregates and sorts to disk instead of growing.
# Measured by the benchmark (2 cores, 24 GiB): scale 10 (1.3 GB of landing files) stays under
# 4 GiB for the whole process tree at 3 GiB; at scale 100 (13.5 GB) a 3 GiB budget made the
# customer facts spill (143 s instead of about 20 s), so big landings get more.
DEFAULT_DUCKDB_MEMORY_LIMIT = "3GB"
MIN_DUCKDB_MEMORY_BYTES = 3 * 1024 ** 3


def sized_memory_limit(landing_bytes: int, machine_bytes: int) -> str:
    """The DuckDB memory budget for a landing folder of ``landing_bytes`` (pure, unit-tested)."""
    budget = max(MIN_DUCKDB_MEMORY_BYTES, min(landing_bytes // 2, machine_bytes // 2))
    return f"{budget // 1024 ** 2}MiB"


def landing_bytes(landing_dir: Path) -> int:
    """Total size of the files in the landing folder (one level of source folders, no reading)."""
    if not landing_dir.is_dir():
        return 0
    total = 0
    with os.scandir(landing_dir) as folders:  # scandir: the file type comes with the listing
        for folder in folders:
            if folder.is_dir():
                with os.scandir(folder.path) as files:
                    total += sum(f.stat().st_size for f in files if f.is_file())
    return total


def machine_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume a small machine
        return 2 * MIN_DUCKDB_MEMORY_BYTES


# CSWH_DUCKDB_MEMORY_LIMIT is the user's setting; CSWH_DUCKDB_MEMORY_BUDGET carries the budget a
# run decided on to its own connections and to its dbt child (dbt/profiles.yml reads it).
MEMORY_BUDGET_VARIABLE = "CSWH_DUCKDB_MEMORY_BUDGET"


def duckdb_memory_limit(env: Mapping[str, str] | None = None, landing_dir: Path | None = None) -> str:
    """The user's CSWH_DUCKDB_MEMORY_LIMIT if set; else sized from the landing folder; without a
    landing folder, the budget this process was given (or the 3 GiB minimum)."""
    env = os.environ if env is None else env
    if env.get("CSWH_DUCKDB_MEMORY_LIMIT"):
        return env["CSWH_DUCKDB_MEMORY_LIMIT"]
    if landing_dir is None:
        return env.get(MEMORY_BUDGET_VARIABLE) or DEFAULT_DUCKDB_MEMORY_LIMIT
    return sized_memory_limit(landing_bytes(landing_dir), machine_memory_bytes())


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
