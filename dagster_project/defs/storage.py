"""The event log of the local Dagster instance: Dagster's SQLite storage, with its connections kept.

Dagster's ``SqliteEventLogStorage`` creates a new SQLAlchemy engine for every statement it runs
and disposes of it right after. On this project's runs that costs more than the work: each event
pays for an engine (its compiled-statement cache is lost with it), a table-existence query and
the close of the last connection to a WAL database, which checkpoints the WAL with an fsync.
Measured on the 2-core VM (docs/operations.md#event-log-cost): 26-46 ms per materialization event
with the stock class, 14 ms with this one, 8 ms for the in-memory instance; a scale-0.1 run that
took 95 s with the in-memory instance took 313 s with the stock SQLite one.

``WarehouseSqliteEventLogStorage`` is the same storage (same files, same schema, same readers:
the webserver and the daemon load it from ``$DAGSTER_HOME/dagster.yaml``) with three changes:

- one engine per shard file, kept (at most ``MAX_OPEN_SHARDS``, least recently used closed first),
  each with one pooled connection, so a statement reuses the connection and the compiled SQL;
- ``PRAGMA synchronous=NORMAL`` on its connections: in WAL mode a commit is then durable once the
  WAL is checkpointed rather than at every commit; a power cut can lose the last events of a run,
  never corrupt the database (SQLite's documented guarantee), and the run is then marked failed
  on the next start (``cli/instance.py``);
- the result of ``has_table`` is remembered once a table exists (Dagster asks before every asset
  event; tables are never dropped by a running instance).

It relies on private members of ``SqliteEventLogStorage`` (``_connect``, ``_db_lock``,
``_initialized_dbs``, ``_initdb``); ``tests/test_instance.py`` fails if they move, so an upgrade
cannot silently bring the cost back. For production, point the instance at PostgreSQL instead
(docs/operations.md#postgresql).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as db
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# Run shards a process keeps open: the index and the runs it is writing or showing.
MAX_OPEN_SHARDS = 8


class WarehouseSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` that keeps its engines and connections (see the module docstring)."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._existing_tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "WarehouseSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.pop(shard, None)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=QueuePool, pool_size=1, max_overflow=4,
                    # The pool hands a connection to one thread at a time; _db_lock serializes use.
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
                )
                db.event.listen(engine, "connect", _fast_commit_pragmas)
            self._engines[shard] = engine  # most recently used last
            while len(self._engines) > MAX_OPEN_SHARDS:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def has_table(self, table_name: str) -> bool:
        if table_name in self._existing_tables:
            return True
        exists = super().has_table(table_name)
        if exists:
            self._existing_tables.add(table_name)
        return exists

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._dispose_engines()  # wipe deletes the shard files under the open connections
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()


def _fast_commit_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
