"""``make bi``: Superset on the embedded defaults with the warehouse's dashboards imported.

    .venv/bin/python bi/superset/run.py [--port 8088] [--prepare-only]

Superset lives in its own virtual environment, ``.venv-bi`` (``make bi-install``, from
``bi/superset/requirements.txt``): Superset 6.1 needs SQLAlchemy 1.4 and the pipeline pins 2.0, so
the two cannot share one. This script runs in the pipeline's ``.venv`` (it reads the semantic layer
to build the bundle) and starts Superset's own commands from ``.venv-bi``:

1. the import bundle from ``bundle.py`` for the published file ($CSWH_WAREHOUSE_DIR/published.duckdb);
2. once per Superset home: ``superset db upgrade``, an ``admin`` user, ``superset init``;
3. ``superset import-dashboards`` (again on every start: the same UUIDs, so it updates in place);
4. ``superset run`` on 127.0.0.1.

docs/bi.md#superset-dashboards
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bi.superset.bundle import build_bundle  # noqa: E402  (the repository on the path first)
from dagster_project.settings import Settings, superset_environment  # noqa: E402

SUPERSET_VENV = REPO_ROOT / ".venv-bi"
CONFIG = HERE / "superset_config.py"


def superset_bin(venv: Path = SUPERSET_VENV) -> Path:
    path = venv / "bin" / "superset"
    if not path.exists():
        raise SystemExit(f"{path} not found: run `make bi-install` first (Superset in its own venv, {venv})")
    return path


def _run(command: list[str], env: dict[str, str], log: Path) -> None:
    with open(log, "a", encoding="utf-8") as fh:
        code = subprocess.run(command, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed (exit code {code}); see {log}")


def prepare(home: Path, published_db: Path, *, public: bool = False, venv: Path = SUPERSET_VENV) -> dict:
    """Superset's metadata in `home`, the admin user and the dashboards imported; returns the
    environment to start ``superset run`` with."""
    home.mkdir(parents=True, exist_ok=True)
    env = superset_environment(home, CONFIG, public=public)
    superset = str(superset_bin(venv))
    log = home / "superset-setup.log"
    password_file = home / "admin_password"
    if not (home / ".initialised").exists():
        _run([superset, "db", "upgrade"], env, log)
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(12), encoding="utf-8")
            password_file.chmod(0o600)
        _run([superset, "fab", "create-admin", "--username", "admin", "--firstname", "Data", "--lastname", "Platform",
              "--email", "admin@insurer.example", "--password", password_file.read_text(encoding="utf-8").strip()],
             env, log)
        _run([superset, "init"], env, log)
        (home / ".initialised").touch()
    bundle = home / "bundle" / "cs_warehouse_dashboards.zip"
    build_bundle(published_db, bundle)
    _run([superset, "import-dashboards", "-p", str(bundle), "-u", "admin"], env, log)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Superset with the warehouse's dashboards (make bi).")
    parser.add_argument("--port", type=int, default=8088, help="port of the Superset UI (default 8088)")
    parser.add_argument("--home", type=Path, default=None,
                        help="Superset's metadata folder (default $CSWH_SUPERSET_HOME or data/bi/superset)")
    parser.add_argument("--prepare-only", action="store_true", help="import the dashboards, do not start the UI")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if not settings.published_db.exists():
        raise SystemExit(f"nothing published yet ({settings.published_db}): run `make run` first")
    home = args.home or settings.superset_home
    env = prepare(home, settings.published_db)
    print(f"[bi] dashboards imported from {settings.published_db} (read-only); Superset home {home}")
    if args.prepare_only:
        return 0
    print(f"[bi] Superset on http://127.0.0.1:{args.port}  user admin, password in {home / 'admin_password'}")
    return subprocess.call([str(superset_bin()), "run", "-h", "127.0.0.1", "-p", str(args.port), "--with-threads"],
                           env=env)


if __name__ == "__main__":
    raise SystemExit(main())
