"""Same seed and arguments -> byte-identical files; seeds equal reference.py; small pure parts."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from dagster_project.settings import REPO_ROOT
from dagster_project.tools.sample_data import names
from dagster_project.tools.sample_data.book import ColumnTable
from dagster_project.tools.sample_data.generator import generate
from dagster_project.tools.sample_data.seeds import seed_texts, write_seeds
from dagster_project.tools.sample_data.writers import Clock, LineBuckets

ARGS = {"scale": 0.03, "start": date(2024, 2, 20), "days": 40, "progress": False}


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    a = _digests_of_run(tmp_path / "a", seed=5)
    b = _digests_of_run(tmp_path / "b", seed=5)
    assert len(a) == 5 * 40 + 2 + 1  # five daily sources, two audit months, the truth file
    assert a == b
    c = _digests_of_run(tmp_path / "c", seed=6)
    assert set(c) == set(a)
    changed = [k for k in a if a[k] != c[k]]
    assert len(changed) > 150  # another seed changes nearly every file


def _digests_of_run(out: Path, seed: int) -> dict[str, str]:
    generate(out, seed=seed, **ARGS)
    return _digests(out)


def test_rerun_replaces_stale_files(tmp_path):
    generate(tmp_path, scale=0.02, start=date(2024, 1, 1), days=10, seed=1, progress=False)
    generate(tmp_path, scale=0.02, start=date(2024, 1, 1), days=4, seed=1, progress=False)
    assert sorted(p.name for p in (tmp_path / "claims").iterdir()) == [f"2024-01-0{i}.csv" for i in range(1, 5)]
    assert sorted(p.name for p in (tmp_path / "audits").iterdir()) == ["2024-01.xlsx"]


def test_committed_seeds_equal_reference():
    seeds_dir = REPO_ROOT / "dbt" / "seeds"
    for name, text in seed_texts().items():
        committed = (seeds_dir / name).read_bytes()
        assert committed == text.encode("utf-8"), f"dbt/seeds/{name} differs from reference.py: run write_seeds"


def test_write_seeds(tmp_path):
    paths = write_seeds(tmp_path)
    assert sorted(p.name for p in paths) == ["branches.csv", "business_calendar.csv", "business_sources.csv",
                                             "lines_of_business.csv", "stages.csv"]
    calendar = (tmp_path / "business_calendar.csv").read_text(encoding="utf-8").splitlines()
    assert calendar[0] == "calendar_date,is_working_day,is_public_holiday,holiday_name,period_end_date"
    # National Day 2024: 1-7 October off, the period of any of those days ends on the 8th; the
    # make-up Saturday 12 October is a working day
    assert "2024-10-05,false,true,National Day,2024-10-08" in calendar
    assert "2024-10-12,true,false,,2024-10-12" in calendar
    branches = (tmp_path / "branches.csv").read_text(encoding="utf-8").splitlines()
    assert branches[0].startswith("code,name_zh,name_en,province_zh")
    assert len(branches) == 21 and branches[1].startswith("JL,吉林分公司,Jilin Branch")


def test_id_card_check_character():
    # GB 11643 worked example: 11010519491231002X
    assert names.id_check_digits(["11010519491231002"]) == ["X"]
    ids = names.id_card_numbers(np.arange(1, 2001), np.full(2000, 22), seed=3)
    assert all(re.fullmatch(r"22[0-9]{15}[0-9X]", i) for i in ids)
    assert names.id_check_digits([i[:17] for i in ids]) == [i[17] for i in ids]
    assert any(i.endswith("X") for i in ids)


def test_people_are_a_function_of_the_customer():
    keys = np.arange(1, 5001)
    assert names.names(keys, seed=1) == names.names(keys, seed=1)
    assert names.names(keys, seed=1) != names.names(keys, seed=2)
    phones = names.phones(keys, seed=1)
    assert all(re.fullmatch(r"1[3-9][0-9]{9}", p) for p in phones)
    assert len(set(phones)) > 4990
    assert all(2 <= len(n) <= 3 for n in names.names(keys, seed=1))


def test_clock_formats():
    clock = Clock(date(2024, 2, 28), days=10)
    secs = np.array([0, 86_400 + 3_661, -86_400, 10 * 86_400 * 400])  # the last is outside the cache
    assert clock.ts(secs) == ["2024-02-28 00:00:00", "2024-02-29 01:01:01", "2024-02-27 00:00:00",
                              "2035-02-10 00:00:00"]  # 4000 days later
    assert clock.call_ts(secs[:2]) == ["2024/02/28 00:00:00", "2024/02/29 01:01:01"]
    assert clock.dates(np.array([0, 2])) == ["2024-02-28", "2024-03-01"]


def test_line_buckets_order_and_cut_off():
    b = LineBuckets(last_day=1)
    b.add(np.array([1, 0, 1, 2]), np.array([50, 10, 5, 1]), ["b", "a", "c", "dropped"])
    b.add(np.array([1]), np.array([5]), ["d"])
    assert b.pop(0) == ["a"]
    assert b.pop(1) == ["c", "d", "b"]  # by timestamp; ties keep insertion order
    assert b.pop(2) == [] and b.pending() == 0


def test_column_table_grows_and_compacts():
    t = ColumnTable({"a": "i8", "b": "f8"}, capacity=16)
    for i in range(10):
        t.append(a=np.arange(i * 10, i * 10 + 10), b=np.ones(10))
    assert len(t) == 100 and t["a"][-1] == 99
    t.keep(t["a"] % 3 == 0)
    assert t["a"].tolist() == list(range(0, 100, 3))
    with pytest.raises(KeyError):
        t.append(a=np.arange(2))
