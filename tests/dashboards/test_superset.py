"""The Superset dashboards as code, in a real Superset 6.1 (docs/bi.md#superset-dashboards).

On the session's published file: the bundle built from the semantic layer is imported into a fresh
Superset (SQLite metadata, the published file read-only through duckdb-engine), every chart's query
is rendered through Superset's chart-data API, the overview's numbers equal the semantic layer's
(SUM of numerators over SUM of denominators, checked in SQL), and every dashboard is photographed in
headless Chromium and checked not to be blank.

Superset lives in its own venv (``make bi-install``: .venv-bi) and Chromium comes from Debian
(``apt-get install chromium``); ``.ci/run`` installs both. Outside CI the test is skipped when they
are missing, and says which; in CI (``CI=true``) a missing piece fails it.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb
import pytest

from bi.superset.run import SUPERSET_VENV, prepare
from tests.conftest import require_tools

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _require_tools() -> None:
    missing = []
    if not (SUPERSET_VENV / "bin" / "superset").exists():
        missing.append(f"Superset ({SUPERSET_VENV}: make bi-install)")
    if _chromium() is None:
        missing.append("Chromium (apt-get install chromium)")
    require_tools(missing)


def _default_stop_signals() -> None:
    """In the server's process before it starts: SIGTERM and SIGINT do what they normally do. A
    process started in the background by a non-interactive shell (nohup, a CI runner) can inherit
    them as ignored, and Superset installs no handler of its own: the server then outlived the
    test's SIGTERM and its teardown timed out."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(server: subprocess.Popen) -> None:
    """Stop the Superset server and whatever it started: SIGTERM to its process group, then
    SIGKILL if it is still running 30 s later."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break
        try:
            server.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            continue
    server.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def superset(built_settings, tmp_path_factory):
    _require_tools()
    home = tmp_path_factory.mktemp("superset")
    env = prepare(home, built_settings.published_db, public=True)
    port = _free_port()
    log = open(home / "superset-run.log", "w", encoding="utf-8")
    server = subprocess.Popen([str(SUPERSET_VENV / "bin" / "superset"), "run", "-h", "127.0.0.1", "-p", str(port),
                               "--with-threads"], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True, preexec_fn=_default_stop_signals)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if urllib.request.urlopen(base + "/health", timeout=5).status == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (home / "superset-run.log").read_text()[-3000:]
            time.sleep(1)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        password = (home / "admin_password").read_text(encoding="utf-8").strip()
        opener.open(base + "/login/", data=urllib.parse.urlencode({"username": "admin", "password": password}).encode())
        me = json.load(opener.open(base + "/api/v1/me/"))
        assert me["result"]["username"] == "admin"
        queries = json.loads((home / "bundle" / "queries.json").read_text(encoding="utf-8"))
        yield {"base": base, "opener": opener, "queries": queries, "home": home}
    finally:
        _stop(server)
        log.close()


def _get(superset, path: str) -> dict:
    return json.load(superset["opener"].open(superset["base"] + path))


def test_every_chart_query_renders_through_the_api_and_the_overview_equals_the_semantic_layer(superset, built_settings):
    datasets = {d["table_name"]: d for d in _get(superset, "/api/v1/dataset/?q=(page_size:100)")["result"]}
    charts = [c for d in superset["queries"]["dashboards"] for c in d["charts"]]
    dashboards = {d["slug"] for d in _get(superset, "/api/v1/dashboard/?q=(page_size:100)")["result"]}
    assert dashboards == {d["slug"] for d in superset["queries"]["dashboards"]} and len(dashboards) == 6
    assert len(_get(superset, "/api/v1/chart/?q=(page_size:100)")["result"]) == len(charts) >= 18
    database = _get(superset, "/api/v1/database/?q=(page_size:100)")["result"]
    assert [d["allow_dml"] for d in database] == [False]
    results = {}
    for chart in charts:
        body = {"datasource": {"id": datasets[chart["table"]]["id"], "type": "table"},
                "queries": [{**chart["query"], "row_limit": 10000}], "result_format": "json", "result_type": "full"}
        request = urllib.request.Request(superset["base"] + "/api/v1/chart/data", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        (result,) = json.load(superset["opener"].open(request))["result"]
        assert result["rowcount"] > 0 and not result.get("error"), chart["title"]
        results[chart["title"]] = result
    # the overview's big numbers are the semantic layer's ratios over every month of the file
    with duckdb.connect(str(built_settings.published_db), read_only=True) as con:
        csat = con.execute("SELECT SUM(satisfied) / SUM(responses) FROM marts.mart_stage_satisfaction").fetchone()[0]
        per_10k = con.execute("SELECT 10000 * SUM(received) / SUM(policies_in_force / 12.0) "
                              "FROM marts.mart_complaints").fetchone()[0]
        by_stage = dict(con.execute("SELECT branch_code || '/' || stage, SUM(satisfied) / SUM(responses) "
                                    "FROM marts.mart_stage_satisfaction GROUP BY ALL").fetchall())
        settled = [r[0] for r in con.execute(
            "SELECT SUM(valid) / NULLIF(SUM(received), 0) FROM marts.mart_complaints WHERE is_valid_rate_mature "
            "GROUP BY month ORDER BY month").fetchall()]
        unsettled = con.execute("SELECT count(*) FROM marts.mart_complaints WHERE NOT is_valid_rate_mature").fetchone()[0]
    assert results["CSAT, all stages"]["data"][0]["satisfaction_csat"] == pytest.approx(csat, rel=1e-12)
    assert results["Complaints per 10k policy-years"]["data"][0]["complaints_per_10k_policy_years"] == \
        pytest.approx(per_10k, rel=1e-12)
    # the valid rate by month leaves out the branch-months still waiting for liability decisions
    charted = [row["complaints_valid_rate"] for row in results["Valid-complaint rate by month (settled branch-months)"]["data"]]
    assert unsettled > 0 and len(charted) == len(settled) > 0
    assert [value is None for value in charted] == [value is None for value in settled]
    assert [v for v in charted if v is not None] == pytest.approx([v for v in settled if v is not None], rel=1e-12)
    pivot = results["CSAT by branch and stage"]["data"]
    assert len(pivot) == len(by_stage)
    for row in pivot:
        assert row["satisfaction_csat"] == pytest.approx(by_stage[f"{row['branch_code']}/{row['stage']}"], rel=1e-12)
    # no hand-written rate formula: each chart's SQL is the semantic layer's ratio of sums
    sql = {c["title"]: c["sql"] for c in charts}
    assert sql["CSAT, all stages"] == {"satisfaction_csat": "SUM(satisfied) / NULLIF(SUM(responses), 0)"}


def _not_blank(png: Path) -> tuple[float, int]:
    """(share of pixels that differ from the most common colour, number of distinct colours)."""
    from PIL import Image  # deferred: only this test reads images

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1400, 1000)
        colours = rgb.getcolors(maxcolors=1 << 24)
    total = sum(n for n, _ in colours)
    background = max(n for n, _ in colours)
    return 1 - background / total, len(colours)


def test_every_dashboard_renders_in_headless_chromium(superset, tmp_path):
    for dashboard in superset["queries"]["dashboards"]:
        png = tmp_path / f"{dashboard['slug']}.png"
        subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                        "--window-size=1400,1000", "--virtual-time-budget=30000", f"--screenshot={png}",
                        f"{superset['base']}/superset/dashboard/{dashboard['slug']}/?standalone=1"],
                       capture_output=True, timeout=180, check=False)
        assert png.exists(), dashboard["slug"]
        share, colours = _not_blank(png)
        # a blank or error page is one colour with a little text; a dashboard has cards, axes and series
        assert share > 0.03 and colours > 60, (dashboard["slug"], share, colours)
