"""``cs-warehouse-dbt``: dbt's command line, as a child that dies with the process that started it.

Every dbt command of the pipeline runs as a subprocess: dagster-dbt starts it for the dbt asset,
``dbt_project.run_dbt`` for parse, docs and the unit tests. When the parent is killed (kill -9, an
OOM kill), an ordinary child lives on: it finishes its build on the work file, holding DuckDB's write
lock, and the next run fails with a lock error until it is done (at scale 10 that is a minute). This
launcher

1. asks the kernel to kill it as soon as its parent dies (``PR_SET_PDEATHSIG``, Linux);
2. takes over the environment its parent decided for it (``settings.adopt_child_env``: the work file,
   the salt and the memory budget of the parent's ``Settings``);
3. hands over to dbt's own CLI entry point.

Elsewhere than Linux step 1 is skipped and it is plain dbt.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

from dagster_project.settings import adopt_child_env, parent_pid_expected

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not fatal: the child then behaves like plain dbt
    # If the parent is already another process when the request takes effect, the starter died in
    # between: end now rather than build on without it.
    expected = parent_pid_expected()
    if expected is not None and os.getppid() != expected:
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    adopt_child_env()
    die_with_parent()
    from dbt.cli.main import cli  # deferred: the launcher's own work must come first (dbt takes 2 s to import)

    return cli()


if __name__ == "__main__":
    raise SystemExit(main())
