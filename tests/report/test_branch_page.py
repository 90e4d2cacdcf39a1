"""A branch page on the small published-like file (tests/report/conftest.py), whose counts are
known: the weakest stage cells, the rank and peer median, the hostile branch code kept out of file
names, and the pages of branches without recipients written but not mailed."""

from __future__ import annotations

import email
import math
import re
from email import policy

from dagster_project.lib.report import snapshot
from dagster_project.lib.report.snapshot import run_snapshot
from tests.report.conftest import EVIL, SATISFACTION, STAGES


def _wilson_high(x: int, n: int, z: float = 1.96) -> float:
    p = x / n
    return (p + z * z / (2 * n) + z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)


def test_weakest_cells_rank_and_recipients_of_a_branch_page(snap_settings):
    run_snapshot(snap_settings, "2024-06", env={})
    revision = snapshot.latest_revision(snap_settings, "2024-06")
    pages = snapshot.render_and_deliver_branches(
        snap_settings, "2024-06", revision, env={"CSWH_SMTP_TO_JL": "manager.jl@insurer.example"})
    assert {p.branch for p in pages} == {"JL", "SC", EVIL}
    by_branch = {p.branch: p for p in pages}
    assert by_branch["JL"].delivery.detail.startswith("written to the outbox (1 file)")
    assert by_branch["SC"].delivery is None and by_branch[EVIL].delivery is None
    # a branch code from the data never names a folder
    assert all(p.html_path.parent == by_branch["JL"].html_path.parent for p in pages)
    assert "<" not in by_branch[EVIL].html_path.name and "/" not in by_branch[EVIL].html_path.name

    # JL's weakest cells, computed here: June cells with >= 100 responses, COMPLAINT (64 in June)
    # pooled with May (124); ordered by the upper end of the 95% Wilson interval
    june, may = SATISFACTION[("2024-06", "JL")], SATISFACTION[("2024-05", "JL")]
    cells = {s: (june[i][1], june[i][0]) for i, s in enumerate(STAGES) if june[i][0] >= 100}
    cells["COMPLAINT"] = (june[4][1] + may[4][1], june[4][0] + may[4][0])
    expected = sorted(cells, key=lambda s: _wilson_high(*cells[s]))[:3]
    assert expected[0] == "COMPLAINT"
    page = by_branch["JL"].html_path.read_text(encoding="utf-8")
    section = page.split("Weakest stage cells", 1)[1].split("3. 逾期未结回访", 1)[0]
    shown = re.findall(r'data-metric="csat\.([A-Z]+)" data-branch="JL"', section)
    assert shown == expected
    assert f"{cells['COMPLAINT'][0]:,} / {cells['COMPLAINT'][1]:,}" in section

    # the survey stage: rank among the three branches (higher is better) and the peers' median
    rates = {b: SATISFACTION[("2024-06", b)][1][1] / SATISFACTION[("2024-06", b)][1][0] for b in ("JL", "SC", EVIL)}
    rank = 1 + sum(1 for v in rates.values() if v > rates["JL"])
    peers = sorted(v for b, v in rates.items() if b != "JL")
    row = re.search(r'<tr>(?:(?!</tr>).)*data-metric="csat\.SURVEY" data-branch="JL"(?:(?!</tr>).)*</tr>',
                    page, re.S).group(0)
    assert f">{rank} / 3<" in row and f"{(peers[0] + peers[1]) / 2 * 100:.1f}%" in row

    # the mailed copy: cid: references to its PNG parts; the file: the same images as data: URIs
    [eml] = snap_settings.outbox_dir.glob("kpi-2024-06-JL-*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["To"] == "manager.jl@insurer.example"
    mailed = msg.get_body(("html",)).get_content()
    pngs = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(pngs) == 3 and len(re.findall(r'src="cid:', mailed)) == 3
    assert page.count('src="data:image/png;base64,') == 3 and "cid:" not in page
