"""Superset on the embedded defaults for the warehouse's dashboards (docs/bi.md#superset-dashboards).

Read by Superset through ``SUPERSET_CONFIG_PATH`` (``make bi`` and ``bi/superset/run.py`` set it):
SQLite metadata in ``$CSWH_SUPERSET_HOME`` (default ``data/bi/superset``), no example data, no
telemetry, nothing fetched from the network. The published DuckDB file is the only data source,
opened read-only (the database connection in ``bundle/databases/``).
"""

import os
from pathlib import Path

SUPERSET_HOME = Path(os.environ.get("CSWH_SUPERSET_HOME", Path(__file__).resolve().parents[2] / "data" / "bi" / "superset"))
SUPERSET_HOME.mkdir(parents=True, exist_ok=True)

SQLALCHEMY_DATABASE_URI = f"sqlite:///{SUPERSET_HOME / 'superset.db'}?check_same_thread=false"
# A key per installation, kept beside the metadata (Superset refuses to start on its default key).
_key_file = SUPERSET_HOME / "secret_key"
if not _key_file.exists():
    _key_file.write_text(os.urandom(32).hex(), encoding="utf-8")
    _key_file.chmod(0o600)
SECRET_KEY = _key_file.read_text(encoding="utf-8").strip()

# Local, offline: no examples, no telemetry, no external map tiles or CDN, a simple in-process cache.
SUPERSET_LOAD_EXAMPLES = False
SCARF_ANALYTICS = False
FEATURE_FLAGS = {"DASHBOARD_RBAC": False, "EMBEDDED_SUPERSET": False}
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 60}
RATELIMIT_ENABLED = False
TALISMAN_ENABLED = False
ROW_LIMIT = 50000

# Anonymous viewers get an Alpha-like public role when CSWH_SUPERSET_PUBLIC=1 (the test's headless
# browser, and a local demo); otherwise everybody logs in.
if os.environ.get("CSWH_SUPERSET_PUBLIC") == "1":
    AUTH_ROLE_PUBLIC = "Public"
    PUBLIC_ROLE_LIKE = "Alpha"  # reads every dataset of this one database; cannot manage users or databases
    WTF_CSRF_ENABLED = False
