"""End to end: ``cs-warehouse run`` over hostile landing files, with the Dagster run history on disk
(``CSWH_DAGSTER_INSTANCE=persistent``). Planted customer names, phones and ID numbers must appear
in no output, log, report, run-history file, ledger message or quarantine reason; the file behind
a symbolic link is never read; the bad files hold back only their own days, the rest is built and
published, and the exit code says the run was partial (3). A second run while the warehouse is
held exits 4 with a message, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.ingest import CONTRACTS
from dagster_project.settings import REPO_ROOT

from tests.conftest import make_settings

pytestmark = pytest.mark.slow

NAME, PHONE, ID_NO = "渗透测试甲", "13700001111", "110101199001011234"
PLANTED = (NAME, PHONE, ID_NO)
SECRET = f"{NAME},{ID_NO},{PHONE}\nroot:x:0:0:root:/root:/bin/bash\n"
CLEAN = {"scale": 0.02, "start": date(2024, 1, 1), "days": 45, "seed": 5, "complaints_per_10k": 300}


def _policy_line(day: date, n: int, *, name=NAME, phone=PHONE, id_no=ID_NO) -> str:
    return (f"PJL98{n:08d},C98{n:07d},{name},{id_no},{phone},JL,MOTOR,DIRECT,100000.00,3500.50,150000.00,"
            f"{day},{day},{day + timedelta(days=364)},,ACTIVE")


def _plant(landing: Path, outside: Path, last: date) -> dict[str, str]:
    header = ",".join(CONTRACTS["policies"].column_names)
    days = [last + timedelta(days=i) for i in range(1, 6)]
    files = {}
    # 1. a policies file without its header: the first line is a customer's record
    files["no_header"] = f"policies/{days[0]}.csv"
    (landing / files["no_header"]).write_text("\n".join(_policy_line(days[0], i) for i in range(1, 4)) + "\n",
                                              encoding="utf-8")
    # 2. a stray quote before the name, a 12-digit phone and a clean row holding the planted values
    files["stray"] = f"policies/{days[1]}.csv"
    lines = [header, _policy_line(days[1], 10).replace(NAME, '"' + NAME, 1), _policy_line(days[1], 11, phone=PHONE + "9"),
             _policy_line(days[1], 12)]
    (landing / files["stray"]).write_text("\n".join(lines) + "\n", encoding="utf-8")
    # 3. an all-NUL call log
    files["nul"] = f"calls/{days[2]}.csv"
    (landing / files["nul"]).write_bytes(b"\x00" * 2048)
    # 4. a survey file that is a link to a file outside the landing folder
    outside.write_text(SECRET, encoding="utf-8")
    files["link"] = f"surveys/{days[3]}.jsonl"
    (landing / files["link"]).symlink_to(outside)
    # 5. a complaint whose complainant repeats its name key, and a misnamed file
    files["dup"] = f"complaints/{days[4]}.json"
    ticket = {"complaint_no": "CPJL98000001", "received_ts": f"{days[4]} 10:15:00", "channel": "HOTLINE",
              "branch_code": "JL", "policy_no": None, "claim_no": None, "category": "OTHER",
              "complainant": {"name": "X", "phone": PHONE}, "is_accepted": True, "is_duplicate": False,
              "is_withdrawn": False, "liability": "PENDING", "extension_level": 0, "status": "OPEN",
              "closed_ts": None, "resolution": None, "updated_ts": f"{days[4]} 10:20:00", "actions": []}
    text = json.dumps([ticket], ensure_ascii=False).replace('"name": "X"', f'"name": "X", "name": "{NAME}"')
    (landing / files["dup"]).write_text(text, encoding="utf-8")
    files["misnamed"] = f"policies/{days[4]}.CSV"
    (landing / files["misnamed"]).write_text(header + "\n" + _policy_line(days[4], 20) + "\n", encoding="utf-8")
    return files


def _env(settings, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSWH_")}
    env.update({k: v for k, v in settings.child_env().items() if k.startswith(("CSWH_", "DAGSTER_HOME"))})
    env.pop("CSWH_DUCKDB_MEMORY_BUDGET", None)
    env.update({"CSWH_DAGSTER_INSTANCE": "persistent", "CSWH_PARTITIONS_START": "2024-01-01",
                "CSWH_DUCKDB_MEMORY_LIMIT": "1GB", **extra})
    return env


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    from dagster_project.tools.sample_data.generator import generate

    root = tmp_path_factory.mktemp("hostile")
    settings = make_settings(root)
    generate(settings.landing_dir, progress=False, **CLEAN)
    last = CLEAN["start"] + timedelta(days=CLEAN["days"] - 1)
    files = _plant(settings.landing_dir, root / "outside_secret.csv", last)
    proc = subprocess.run([sys.executable, "-m", "dagster_project", "run"], cwd=REPO_ROOT, env=_env(settings),
                          capture_output=True, text=True, timeout=900)
    return settings, files, proc


def _all_bytes_under(folder: Path) -> list[tuple[Path, bytes]]:
    out = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            out.append((path, path.read_bytes()))
    return out


def test_the_run_publishes_and_says_it_was_partial(hostile_run):
    settings, files, proc = hostile_run
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert "== Stale partitions and landing exceptions ==" in proc.stdout
    for key in ("no_header", "nul", "link", "misnamed"):
        assert files[key] in proc.stdout, key
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        stale, exceptions = con.execute(
            "SELECT stale_partitions, landing_exceptions FROM meta.publish_manifest").fetchone()
    stale, exceptions = json.loads(stale), json.loads(exceptions)
    assert {e["path"] for e in stale} == {files["no_header"], files["nul"]}
    assert {e["path"]: e["status"] for e in exceptions} == {files["link"]: "ignored", files["misnamed"]: "ignored"}


def test_no_planted_pii_in_any_output_log_report_or_run_history(hostile_run):
    settings, _, proc = hostile_run
    leaks = [f"stdout: {p}" for p in PLANTED if p in proc.stdout] + [f"stderr: {p}" for p in PLANTED if p in proc.stderr]
    history = _all_bytes_under(settings.dagster_home)
    assert any(path.suffix == ".db" for path, _ in history)  # the persistent run history is on disk
    for path, data in history + _all_bytes_under(settings.reports_dir):
        leaks += [f"{path}: {p}" for p in PLANTED if p.encode() in data]
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        texts = [r[0] for r in con.execute("SELECT message FROM raw._ingest_ledger WHERE message IS NOT NULL").fetchall()]
        for contract in CONTRACTS.values():
            texts += [r[0] for r in con.execute(f"SELECT reason FROM {contract.quarantine_table}").fetchall()]
        # The evidence is kept, in the private work file only.
        evidence = [r[0] for r in con.execute("SELECT raw_text FROM raw.quarantine_policies").fetchall()]
    leaks += [f"ledger/quarantine reason: {t[:80]}" for t in texts if any(p in t for p in PLANTED)]
    assert not leaks, leaks
    assert any(NAME in (t or "") for t in evidence)
    assert oct(settings.work_db.stat().st_mode & 0o777) == "0o600"


def test_the_linked_file_was_never_read(hostile_run):
    settings, _, _ = hostile_run
    with duckdb.connect(str(settings.work_db), read_only=True) as con:
        for contract in CONTRACTS.values():
            texts = [r[0] for r in con.execute(f"SELECT raw_text FROM {contract.quarantine_table}").fetchall()]
            assert not [t for t in texts if t and "root:x:0:0" in t]
        assert con.execute("SELECT count(*) FROM raw.surveys WHERE _source_file LIKE '%.jsonl' "
                           "AND _source_file NOT IN (SELECT path FROM raw._ingest_ledger WHERE status = 'loaded')"
                           ).fetchone() == (0,)


def test_a_second_run_while_the_warehouse_is_held_exits_4(hostile_run):
    settings, _, _ = hostile_run
    holder = duckdb.connect(str(settings.work_db))  # another process holds the work file
    try:
        proc = subprocess.run([sys.executable, "-m", "dagster_project", "run"], cwd=REPO_ROOT,
                              env=_env(settings), capture_output=True, text=True, timeout=300)
    finally:
        holder.close()
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert "another run is in progress" in proc.stderr and "Traceback" not in proc.stderr
