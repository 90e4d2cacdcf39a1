"""Every location, budget and switch of the warehouse, read from the environment in one place.

``Settings.from_env()`` is the only reader of ``os.environ`` in the package; everything else gets a
``Settings`` value: the Dagster definitions as their ``warehouse`` resource
(``dagster_project.defs.resources``), the CLI from its ``main``, the engines under ``lib/`` as an
argument. Child processes get their environment from here too: ``Settings.child_env()`` for a
process that must see the same files (``dagster dev``, a test subprocess) and ``Settings.dbt_env()``
for dbt (``dbt_variables``; ``lib/transform/dbt_child.py`` applies them with ``adopt_child_env``).

Relative values resolve against the repository root, never the current directory, so the CLI,
Dagster, dbt and the tests agree on the same files wherever they are started from.
docs/architecture.md#settings lists every variable.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"

# Telemetry off for every tool before any of them is imported by a caller of this module: the
# machines have no internet, and nothing may wait on a network call.
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DAGSTER_DISABLE_TELEMETRY": "true",
}
# A run over a range of partitions would otherwise write one "materialization planned" event per
# asset *per partition* into the instance's event log before its first step starts; with this,
# one event per asset (docs/operations.md#event-log-cost).
DAGSTER_RUN_SETTINGS = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}
for _key, _value in {**TELEMETRY_OFF, **DAGSTER_RUN_SETTINGS}.items():
    os.environ.setdefault(_key, _value)

WORK_DB_NAME = "work.duckdb"
PUBLISHED_DB_NAME = "published.duckdb"
DEFAULT_PARTITIONS_START = "2024-01-01"
SMTP_PREFIX = "CSWH_SMTP_"
BRANCH_RECIPIENTS_PREFIX = "CSWH_SMTP_TO_"  # + branch code: that branch's report recipients

# The default salt lives outside the repository so that it is never committed.
try:
    DEFAULT_SALT_FILE = Path.home() / ".config" / "cs-warehouse" / "pii_salt"
except RuntimeError:  # no HOME and no passwd entry: reported when the salt is needed
    DEFAULT_SALT_FILE = Path("~") / ".config" / "cs-warehouse" / "pii_salt"
# A salt an attacker can enumerate makes customer_key reversible (sha256('|' || customer_id) for an
# empty one): at least this many characters. The generated default has 64 hex characters.
MIN_SALT_CHARS = 16

# Set to 1 by the operator when a changed PII salt is intended (lib/transform/dbt_project.py).
SALT_CHANGE_VARIABLE = "CSWH_PII_SALT_CHANGED"

# What the dbt child of a run receives (dbt/profiles.yml reads these three).
DBT_WORK_DB_VARIABLE = "CSWH_WORK_DB"
DBT_SALT_VARIABLE = "CSWH_PII_SALT"
MEMORY_BUDGET_VARIABLE = "CSWH_DUCKDB_MEMORY_BUDGET"
# The pid of the process that starts dbt: the child checks it still has that parent (dbt_child.py).
DBT_PARENT_PID_VARIABLE = "CSWH_DBT_PARENT_PID"

# The engine dbt builds on (docs/spark.md#one-switch): the embedded DuckDB file, or Apache Spark.
ENGINE_VARIABLE = "CSWH_ENGINE"
ENGINES = ("duckdb", "spark")
# Spark's own settings that dbt/profiles.yml reads (CSWH_SPARK_MASTER, _THREADS, _DRIVER_MEMORY,
# _SCHEMA, _HOST, _PORT, _USER): passed to the dbt child as they are.
SPARK_PREFIX = "CSWH_SPARK_"
SPARK_DIR_VARIABLE = "CSWH_SPARK_DIR"
LAKE_DIR_VARIABLE = "CSWH_LAKE_DIR"


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


def partitions_start_setting(env: Mapping[str, str] | None = None) -> str:
    """``$CSWH_PARTITIONS_START``: the first day the landing boundary and the partitions know."""
    env = os.environ if env is None else env
    return env.get("CSWH_PARTITIONS_START") or DEFAULT_PARTITIONS_START


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    warehouse_dir: Path
    reports_dir: Path
    outbox_dir: Path
    dagster_home: Path
    pii_salt: str = field(repr=False)
    # First partition the Dagster definitions know (the sample data starts there).
    partitions_start: str = DEFAULT_PARTITIONS_START
    # The user's DuckDB budget per database (``CSWH_DUCKDB_MEMORY_LIMIT``); None = sized from the
    # landing files (``memory_budget``).
    duckdb_memory_limit: str | None = None
    # Column lineage and built schemas on every dbt materialization (costs ~80% more dbt time).
    dbt_column_lineage: bool = False
    # CSWH_SMTP_* of the monthly e-mail (host, port, user, password, from, to, starttls).
    smtp: Mapping[str, str] = field(default_factory=dict, repr=False)
    # Test hook: publish pauses this long right before its os.replace (tests/reliability).
    publish_pause_seconds: float = 0.0
    # The operator says a changed PII salt is intended (CSWH_PII_SALT_CHANGED=1): a full refresh.
    pii_salt_change_intended: bool = False
    # A branch with this many open overdue follow-up cases gets an alert (CSWH_ALERT_OVERDUE_CASES;
    # docs/bi.md#alerts).
    alert_overdue_cases: int = 5
    # duckdb (the default) or spark: where dbt builds (CSWH_ENGINE; docs/spark.md#one-switch).
    engine: str = "duckdb"
    # The raw tables as Parquet for Spark (CSWH_LAKE_DIR; default <warehouse>/lake) and Spark's
    # catalog and table files (CSWH_SPARK_DIR; default <warehouse>/spark). None = the default.
    lake_location: Path | None = None
    spark_location: Path | None = None
    # CSWH_SPARK_* other than the folder (master, threads, driver memory, Thrift host ...).
    spark_options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigurationError(f"{ENGINE_VARIABLE} must be one of {', '.join(ENGINES)}, got {self.engine!r}")

    @property
    def lake_dir(self) -> Path:
        """The lake folder: one Parquet folder per raw table, what Spark's sources read."""
        return self.lake_location or self.warehouse_dir / "lake"

    @property
    def spark_dir(self) -> Path:
        """Spark's metastore (Derby) and warehouse folder (``<schema>.db/<table>/``, Parquet)."""
        return self.spark_location or self.warehouse_dir / "spark"

    @property
    def branch_recipients(self) -> dict[str, tuple[str, ...]]:
        """Who receives each branch's monthly page: ``CSWH_SMTP_TO_<BRANCH>`` (comma-separated),
        e.g. ``CSWH_SMTP_TO_JL=manager.jl@insurer.example`` (docs/bi.md#branch-reports). Beside the
        other mail settings, so one place configures the e-mail; a branch without a variable gets
        its page written, not mailed."""
        out: dict[str, tuple[str, ...]] = {}
        for key, value in self.smtp.items():
            if key.startswith(BRANCH_RECIPIENTS_PREFIX) and key != BRANCH_RECIPIENTS_PREFIX:
                addresses = tuple(dict.fromkeys(a.strip() for a in value.split(",") if a.strip()))
                if addresses:
                    out[key[len(BRANCH_RECIPIENTS_PREFIX):].upper()] = addresses
        return dict(sorted(out.items()))

    @property
    def superset_home(self) -> Path:
        """Superset's metadata (SQLite) for ``make bi``: data/bi/superset beside the warehouse folder."""
        return self.warehouse_dir.parent / "bi" / "superset"

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
        """The change cache of the landing files (``lib.ingest.landing.Fingerprints``): the one
        cache the CLI, the sensor, the schedule and the ingest steps share."""
        return self.warehouse_dir / "landing_fingerprints.json"

    @property
    def versions_dir(self) -> Path:
        return self.warehouse_dir / "versions"

    @property
    def run_logs_dir(self) -> Path:
        return self.reports_dir / "runs"

    @property
    def memory_budget(self) -> str:
        """The DuckDB memory budget of every database a run opens (see ``sized_memory_limit``)."""
        if self.duckdb_memory_limit:
            return self.duckdb_memory_limit
        return sized_memory_limit(landing_bytes(self.landing_dir), machine_memory_bytes())

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
            partitions_start=partitions_start_setting(env),
            duckdb_memory_limit=env.get("CSWH_DUCKDB_MEMORY_LIMIT") or None,
            dbt_column_lineage=_truthy(env.get("CSWH_DBT_COLUMN_LINEAGE")),
            smtp={k: v for k, v in env.items() if k.startswith(SMTP_PREFIX)},
            publish_pause_seconds=float(env.get("CSWH_PUBLISH_PAUSE_SECONDS") or 0),
            pii_salt_change_intended=_truthy(env.get(SALT_CHANGE_VARIABLE)),
            alert_overdue_cases=_alert_threshold(env.get(ALERT_OVERDUE_VARIABLE)),
            engine=(env.get(ENGINE_VARIABLE) or "duckdb").strip().lower(),
            lake_location=resolve_path(env[LAKE_DIR_VARIABLE]) if env.get(LAKE_DIR_VARIABLE) else None,
            spark_location=resolve_path(env[SPARK_DIR_VARIABLE]) if env.get(SPARK_DIR_VARIABLE) else None,
            spark_options={k: v for k, v in env.items() if k.startswith(SPARK_PREFIX) and k != SPARK_DIR_VARIABLE},
        )

    def with_overrides(self, **changes) -> "Settings":
        return replace(self, **changes)

    def child_env(self) -> dict[str, str]:
        """The environment of a child process (``dagster dev``, a test subprocess) whose
        ``Settings.from_env()`` equals these settings: this process's own (PATH, HOME, locale)
        without any warehouse variable, plus these settings'."""
        env = {
            **_inherited_environment(),
            "CSWH_LANDING_DIR": str(self.landing_dir),
            "CSWH_WAREHOUSE_DIR": str(self.warehouse_dir),
            "CSWH_REPORTS_DIR": str(self.reports_dir),
            "CSWH_OUTBOX_DIR": str(self.outbox_dir),
            "DAGSTER_HOME": str(self.dagster_home),
            "CSWH_PII_SALT": self.pii_salt,
            "CSWH_PARTITIONS_START": self.partitions_start,
            "CSWH_DBT_COLUMN_LINEAGE": "1" if self.dbt_column_lineage else "",
            **({"CSWH_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit} if self.duckdb_memory_limit else {}),
            **({"CSWH_PUBLISH_PAUSE_SECONDS": str(self.publish_pause_seconds)} if self.publish_pause_seconds else {}),
            **({SALT_CHANGE_VARIABLE: "1"} if self.pii_salt_change_intended else {}),
            ALERT_OVERDUE_VARIABLE: str(self.alert_overdue_cases),
            ENGINE_VARIABLE: self.engine,
            **({LAKE_DIR_VARIABLE: str(self.lake_location)} if self.lake_location else {}),
            **({SPARK_DIR_VARIABLE: str(self.spark_location)} if self.spark_location else {}),
            **dict(self.spark_options),
            **dict(self.smtp),
            **TELEMETRY_OFF,
            **DAGSTER_RUN_SETTINGS,
        }
        return env

    def dbt_variables(self, *, parent_pid: int | None = None) -> dict[str, str]:
        """What a dbt child on these settings' work file must see: dbt/profiles.yml reads the work
        file, the salt and the memory budget. The one place dbt's environment is decided."""
        env = {
            DBT_WORK_DB_VARIABLE: str(self.work_db),
            DBT_SALT_VARIABLE: self.pii_salt,
            MEMORY_BUDGET_VARIABLE: self.memory_budget,
            **TELEMETRY_OFF,
        }
        if self.engine == "spark":
            env.update({
                # dbt's own variable for --target: the spark output of dbt/profiles.yml
                "DBT_TARGET": "spark",
                LAKE_DIR_VARIABLE: str(self.lake_dir),
                SPARK_DIR_VARIABLE: str(self.spark_dir),
                # Spark's scratch files (shuffle, spills) beside its tables, not in /tmp
                "SPARK_LOCAL_DIRS": str(self.spark_dir / "scratch"),
                **dict(self.spark_options),
            })
        if parent_pid is not None:
            env[DBT_PARENT_PID_VARIABLE] = str(parent_pid)
        return env

    def metricflow_env(self) -> dict[str, str]:
        """The environment of ``mf query`` on the published file: dbt's ``published`` target
        (dbt/profiles.yml, read-only; docs/bi.md#the-semantic-layer). dbt renders the whole profile,
        so the work target's variables are set too; nothing opens the work file."""
        return {**_inherited_environment(), **self.dbt_variables(), "DBT_TARGET": "published",
                "CSWH_PUBLISHED_DB": str(self.published_db), "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
                "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR)}

    def dbt_env(self, *, parent_pid: int | None = None) -> dict[str, str]:
        """The whole environment of a dbt subprocess started by this process."""
        return {**_inherited_environment(), **self.dbt_variables(parent_pid=parent_pid)}

    def activate(self) -> "Settings":
        """Make these settings the process's DuckDB configuration (``connect_work_db``): every
        connection to a file in one process must share one configuration, so the budget is a
        property of the process, set by whoever starts the work (the resource, the CLI)."""
        global _ACTIVE_MEMORY_LIMIT
        _ACTIVE_MEMORY_LIMIT = self.memory_budget
        return self


def dbt_parse_env(target_dir: Path) -> dict[str, str]:
    """The environment of ``dbt parse``, which reads the profile but opens no database: the
    profile's variables are placeholders that no warehouse uses. The placeholder file is named like
    a warehouse's work file, because dbt takes the database name of every node from its stem."""
    return {**_inherited_environment(), DBT_WORK_DB_VARIABLE: str(target_dir / "parse-only" / "work.duckdb"),
            DBT_SALT_VARIABLE: "parse-only", MEMORY_BUDGET_VARIABLE: DEFAULT_DUCKDB_MEMORY_LIMIT, **TELEMETRY_OFF}


ALERT_OVERDUE_VARIABLE = "CSWH_ALERT_OVERDUE_CASES"


def superset_environment(home: Path, config: Path, *, public: bool = False) -> dict[str, str]:
    """The environment of Superset's commands (``make bi``, the BI test; docs/bi.md#superset-dashboards):
    this process's own without the warehouse's variables, the config file and its metadata folder,
    telemetry off; ``public`` lets anonymous viewers read the dashboards (a local browser, the test)."""
    env = {**_inherited_environment(), **TELEMETRY_OFF, "SUPERSET_CONFIG_PATH": str(config),
           "CSWH_SUPERSET_HOME": str(home), "FLASK_APP": "superset"}
    if public:
        env["CSWH_SUPERSET_PUBLIC"] = "1"
    return env


def _alert_threshold(value: str | None) -> int:
    text = (value or "").strip()
    if not text:
        return 5
    try:
        number = int(text)
    except ValueError:
        raise ConfigurationError(f"{ALERT_OVERDUE_VARIABLE} must be a whole number of cases, got {text!r}") from None
    if number < 1:
        raise ConfigurationError(f"{ALERT_OVERDUE_VARIABLE} must be at least 1, got {number}")
    return number


def _inherited_environment() -> dict[str, str]:
    """What a child process inherits from this one (PATH, HOME, locale), without the warehouse's
    own variables, which ``dbt_env`` sets from the settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CSWH_") and k != "DAGSTER_HOME"}


# dagster-dbt starts dbt with a copy of the Dagster process's own environment (``DbtCliResource.cli``
# has no parameter for a child's environment), plus ``DBT_TARGET_PATH``, the invocation's target
# folder. The dbt asset leaves ``Settings.dbt_variables`` in that folder (owner-only, created new)
# and the launcher (``lib/transform/dbt_child.py``) takes them over and deletes the file before
# dbt starts: the Dagster process's environment is never written.
CHILD_ENV_FILE = ".cswh-dbt-env.json"


def write_child_env(folder: Path, variables: Mapping[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHILD_ENV_FILE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(dict(variables), handle)
    return path


def adopt_child_env() -> bool:
    """In the dbt launcher: apply the variables the parent left for this invocation (True if it did)."""
    folder = os.environ.get("DBT_TARGET_PATH")
    if not folder:
        return False
    path = Path(folder) / CHILD_ENV_FILE
    try:
        variables = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    path.unlink(missing_ok=True)
    os.environ.update({str(k): str(v) for k, v in variables.items()})
    return True


def parent_pid_expected() -> int | None:
    """The pid of the process that started this dbt child, if it said so (dbt_child.py)."""
    value = os.environ.get(DBT_PARENT_PID_VARIABLE, "")
    return int(value) if value.isdigit() else None


# DuckDB's own default takes 80% of the machine's memory for its buffers; the pipeline shares the
# machine with the Dagster process, a dbt process and BI readers, so its DuckDB databases get a
# budget that follows the data: half the size of the landing files, at least 3 GiB, at most half
# the machine. Above it DuckDB spills joins, aggregates and sorts to disk instead of growing.
# Measured by the benchmark (2 cores, 24 GiB): scale 10 (1.3 GB of landing files) stays under
# 4 GiB for the whole process tree at 3 GiB; at scale 100 (13.5 GB) a 3 GiB budget made the
# customer facts spill (143 s instead of about 20 s), so big landings get more.
DEFAULT_DUCKDB_MEMORY_LIMIT = "3GB"
MIN_DUCKDB_MEMORY_BYTES = 3 * 1024 ** 3
_ACTIVE_MEMORY_LIMIT: str | None = None


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
            if folder.is_dir(follow_symlinks=False):
                with os.scandir(folder.path) as files:
                    total += sum(f.stat(follow_symlinks=False).st_size for f in files
                                 if f.is_file(follow_symlinks=False))
    return total


def machine_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume a small machine
        return 2 * MIN_DUCKDB_MEMORY_BYTES


def duckdb_memory_limit() -> str:
    """The budget of this process's DuckDB connections: the active settings' (``activate``); in a
    dbt child or a process without active settings, the budget its parent passed down, else the
    3 GiB minimum."""
    return _ACTIVE_MEMORY_LIMIT or os.environ.get(MEMORY_BUDGET_VARIABLE) or DEFAULT_DUCKDB_MEMORY_LIMIT


def connect_work_db(path: Path | str, *, read_only: bool = False):
    """A DuckDB connection to the work file with the pipeline's settings. Every read-write
    connection in a process must use the same settings (DuckDB refuses a second in-process
    connection to a file with a different configuration), so they all come from here."""
    import duckdb  # deferred: settings is imported by `cs-warehouse --help`, duckdb costs 0.15 s there

    return duckdb.connect(str(path), read_only=read_only, config={"memory_limit": duckdb_memory_limit()})


def ensure_dirs(settings: Settings) -> None:
    for path in (settings.landing_dir, settings.warehouse_dir, settings.reports_dir,
                 settings.outbox_dir, settings.versions_dir):
        path.mkdir(parents=True, exist_ok=True)


def eprint(*args, **kwargs) -> None:
    """Progress lines go to stderr so stdout stays a clean summary."""
    print(*args, file=sys.stderr, flush=True, **kwargs)
