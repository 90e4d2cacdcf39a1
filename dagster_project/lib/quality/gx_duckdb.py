"""Great Expectations 1.x on DuckDB: a small, project-owned compatibility layer.

GX 1.x has no DuckDB dialect. Through SQLAlchemy + duckdb-engine two things break:

1. **Every metric query fails with ``list index out of range``.** GX's
   ``SqlAlchemyExecutionEngine.execute_query`` runs the query inside
   ``with self.get_connection() as connection`` and reads the rows *after* the block has
   returned the connection to the pool. duckdb-engine's cursor dies with its connection, so
   ``fetchall()`` sees no rows. GX already keeps one persisted connection for SQLite, SQL Server,
   BigQuery and Databricks; we make DuckDB take the same path.
2. **Regex expectations build no SQL** because GX picks the regex operator by dialect module and
   knows none for DuckDB. DuckDB's ``~`` / ``!~`` operators have PostgreSQL semantics (partial
   match, RE2 syntax), so the PostgreSQL dialect module is the right mapping.

``install()`` patches ``SqlAlchemyExecutionEngine`` once per process and only changes behaviour
for engines whose dialect is ``duckdb``. It checks the GX internals it relies on and raises
``GXCompatibilityError`` if they are gone, so an upgrade of GX fails loudly, not silently
(tests/quality/test_gx_duckdb.py also checks the numbers a patched validation gives).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import threading
from pathlib import Path
from typing import Iterator

# Importing the settings first turns GX's analytics off (settings.TELEMETRY_OFF) before GX loads.
from dagster_project.settings import duckdb_memory_limit

DUCKDB_DIALECT = "duckdb"
_PATCH_MARK = "_cswh_duckdb_compat"
_ORIGINALS: dict[str, object] = {}


class GXCompatibilityError(RuntimeError):
    """The GX internals this layer patches have changed; the layer must be revisited."""


_warm_up_thread: threading.Thread | None = None


def warm_up_in_background() -> threading.Thread:
    """Import Great Expectations in a background thread while the pipeline does DuckDB work.

    Importing GX takes 2.5-4 s (pandas, scipy, SQLAlchemy dialects) and the checks need it only
    after the ingest steps; DuckDB releases the interpreter, so the import overlaps them. GX's
    package has import cycles: a second thread importing it at the same time can get a partially
    initialised module (``ImportError: cannot import name ...``), so every use of GX in this
    module first waits for the warm-up (``wait_for_warm_up``)."""
    global _warm_up_thread

    def _import() -> None:
        # deferred by design: this thread exists to pay GX's 2.5-4 s import while DuckDB works
        with contextlib.suppress(Exception):  # a failure shows again, with its cause, on first use
            import great_expectations  # noqa: F401
            import sqlalchemy.dialects.postgresql  # noqa: F401  (deferred with GX, see above)
            from great_expectations.execution_engine import sqlalchemy_execution_engine  # noqa: F401  (deferred)

    if _warm_up_thread is None or not _warm_up_thread.is_alive():
        _warm_up_thread = threading.Thread(target=_import, name="warm-up-great-expectations", daemon=True)
        _warm_up_thread.start()
    return _warm_up_thread


def wait_for_warm_up() -> None:
    thread = _warm_up_thread
    if thread is not None and thread is not threading.current_thread():
        thread.join()


def _engine_class():
    wait_for_warm_up()
    try:
        # deferred: GX costs 2.5-4 s to import (warm_up_in_background); only validations need it
        from great_expectations.execution_engine import sqlalchemy_execution_engine as module
    except ImportError as exc:  # pragma: no cover - GX is a hard dependency
        raise GXCompatibilityError(f"cannot import GX's SQLAlchemy execution engine: {exc}") from exc
    cls = getattr(module, "SqlAlchemyExecutionEngine", None)
    if cls is None:
        raise GXCompatibilityError("great_expectations.execution_engine.sqlalchemy_execution_engine "
                                   "no longer defines SqlAlchemyExecutionEngine")
    return module, cls


def _verify_internals(module, cls) -> None:
    """The attributes the patch relies on; a GX upgrade that removes one must stop us here."""
    problems = []
    for name in ("get_connection", "execute_query", "__init__", "dialect_name"):
        if not hasattr(cls, name):
            problems.append(f"SqlAlchemyExecutionEngine.{name} is missing")
    if not hasattr(module, "_PERSISTED_CONNECTION_DIALECTS"):
        problems.append("_PERSISTED_CONNECTION_DIALECTS is missing (the persisted-connection path changed)")
    if hasattr(cls, "get_connection"):
        source = inspect.getsource(cls.get_connection)
        if "self._connection" not in source:
            problems.append("get_connection no longer keeps the persisted connection in self._connection")
    if hasattr(cls, "__init__"):
        source = inspect.getsource(cls.__init__)
        if "self.dialect_module" not in source or "self._connection" not in source:
            problems.append("__init__ no longer sets self.dialect_module / self._connection")
    try:
        # deferred: GX costs 2.5-4 s to import (warm_up_in_background); only validations need it
        from great_expectations.expectations.metrics import util as metrics_util

        regex_source = inspect.getsource(metrics_util.get_dialect_regex_expression)
        if "postgresql" not in regex_source:
            problems.append("get_dialect_regex_expression no longer has a PostgreSQL branch")
    except (ImportError, AttributeError) as exc:
        problems.append(f"get_dialect_regex_expression is gone: {exc}")
    if problems:
        raise GXCompatibilityError("GX internals changed under the DuckDB compatibility layer: "
                                   + "; ".join(problems))


def is_installed() -> bool:
    _, cls = _engine_class()
    return bool(getattr(cls, _PATCH_MARK, False))


def install() -> None:
    """Patch GX's SQLAlchemy execution engine for DuckDB (idempotent)."""
    module, cls = _engine_class()
    if getattr(cls, _PATCH_MARK, False):
        return
    _verify_internals(module, cls)

    # deferred with GX (see _engine_class): the dialect GX's regex SQL is taken from
    import sqlalchemy.dialects.postgresql as postgresql_dialect_module

    original_init = cls.__init__
    original_get_connection = cls.get_connection

    def __init__(self, *args, **kwargs):  # noqa: N807 - replaces the method of the same name
        original_init(self, *args, **kwargs)
        if self.dialect_name == DUCKDB_DIALECT:
            # DuckDB's ~ and !~ behave like PostgreSQL's (partial match), so GX's PostgreSQL
            # regex branch produces correct DuckDB SQL.
            self.dialect_module = postgresql_dialect_module

    @contextlib.contextmanager
    def get_connection(self):
        if self.dialect_name != DUCKDB_DIALECT:
            with original_get_connection(self) as connection:
                yield connection
            return
        # Same as GX's path for SQLite: one connection for the engine's lifetime, so result
        # cursors are still alive when GX fetches from them after the `with` block.
        if self._connection is None or self._connection.closed:
            self._connection = self.engine.connect()
        yield self._connection

    _ORIGINALS.update(__init__=original_init, get_connection=original_get_connection)
    cls.__init__ = __init__
    cls.get_connection = get_connection
    setattr(cls, _PATCH_MARK, True)


def uninstall() -> None:
    """Restore GX's own methods (tests use this to show the patch is what makes DuckDB work)."""
    _, cls = _engine_class()
    if not getattr(cls, _PATCH_MARK, False):
        return
    cls.__init__ = _ORIGINALS["__init__"]
    cls.get_connection = _ORIGINALS["get_connection"]
    setattr(cls, _PATCH_MARK, False)


def close_execution_engine(execution_engine) -> None:
    """Release the persisted connection and the pool, so the DuckDB file is free again."""
    connection = getattr(execution_engine, "_connection", None)
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.close()
        execution_engine._connection = None
    engine = getattr(execution_engine, "engine", None)
    if engine is not None and hasattr(engine, "dispose"):
        engine.dispose()


def duckdb_url(path: str | os.PathLike[str]) -> str:
    return f"duckdb:///{Path(path).resolve()}"


@contextlib.contextmanager
def duckdb_datasource(path: str | os.PathLike[str], *, read_only: bool = True,
                      name: str = "cswh_duckdb") -> Iterator[tuple[object, object]]:
    """An ephemeral GX context with one SQL datasource on a DuckDB file.

    Yields ``(context, datasource)``. On exit the execution engine's persisted connection and
    both SQLAlchemy engines are closed, so the pipeline can open the file read-write again in
    this process (DuckDB refuses a second in-process open with a different configuration).
    """
    install()
    import great_expectations as gx  # deferred: GX costs 2.5-4 s to import (warm_up_in_background)

    context = gx.get_context(mode="ephemeral")
    with contextlib.suppress(Exception):  # progress bars only clutter logs of a batch job
        from great_expectations.data_context.types.base import ProgressBarsConfig  # deferred with GX (see above)

        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    datasource = context.data_sources.add_sql(
        name=name,
        connection_string=duckdb_url(path),
        # the pipeline's memory budget: without it DuckDB caches up to 80% of the machine
        kwargs={"connect_args": {"read_only": read_only, "config": {"memory_limit": duckdb_memory_limit()}}},
    )
    try:
        yield context, datasource
    finally:
        execution_engine = getattr(datasource, "_execution_engine", None)
        if execution_engine is not None:
            close_execution_engine(execution_engine)
        engine = getattr(datasource, "_engine", None)
        if engine is not None:
            engine.dispose()
