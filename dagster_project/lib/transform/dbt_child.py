"""``cs-warehouse-dbt``: dbt's command line, as a child that dies with the process that started it.

dagster-dbt runs every dbt command as a subprocess of the Dagster step. When that process is
killed (kill -9, an OOM kill), an ordinary child lives on: it finishes its build on the work file,
holding DuckDB's write lock, and the next run fails with a lock error until it is done (at scale 10
that is a minute). This launcher asks the kernel to kill it as soon as its parent dies
(``PR_SET_PDEATHSIG``, Linux), then hands over to dbt's own CLI entry point. Elsewhere it is plain
dbt.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


# The pid of the process that starts dbt (set by the dbt asset): if the parent is already another
# process when the request takes effect, the starter died in between.
PARENT_PID_VARIABLE = "CSWH_DBT_PARENT_PID"


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not fatal: the child then behaves like plain dbt
    expected = os.environ.get(PARENT_PID_VARIABLE)
    if expected and expected.isdigit() and os.getppid() != int(expected):
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    die_with_parent()
    from dbt.cli.main import cli

    return cli()


if __name__ == "__main__":
    raise SystemExit(main())
