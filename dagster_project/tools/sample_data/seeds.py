"""The dbt seeds under ``dbt/seeds/`` are written from ``dagster_project.lib.reference`` (one source of
truth for branches, stages, lines of business and business sources); a test checks that the
committed files equal what this module produces."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from dagster_project.lib.reference import BRANCHES, BUSINESS_SOURCES, LINES_OF_BUSINESS, STAGES


def seed_tables() -> dict[str, tuple[list[str], list[list]]]:
    """file name -> (header, rows). Column names follow dbt/seeds/_seeds.yml (code, label_zh ...)."""
    return {
        "branches.csv": (
            ["code", "name_zh", "name_en", "province_zh", "urban_share", "surveyor_sla_minutes",
             "size_weight"],
            [[b.code, b.name_zh, b.name_en, b.province_zh, f"{b.urban_share:.2f}", b.surveyor_sla_minutes,
              f"{b.size_weight:.2f}"] for b in BRANCHES],
        ),
        "stages.csv": (
            ["code", "label_zh", "label_en", "display_order"],
            [list(s) for s in STAGES],
        ),
        "lines_of_business.csv": (
            ["code", "label_zh", "label_en"],
            [list(x) for x in LINES_OF_BUSINESS],
        ),
        "business_sources.csv": (
            ["code", "label_zh", "label_en"],
            [list(x) for x in BUSINESS_SOURCES],
        ),
    }


def seed_texts() -> dict[str, str]:
    """file name -> exact file content (UTF-8, no BOM, LF line ends)."""
    out = {}
    for name, (header, rows) in seed_tables().items():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        out[name] = buf.getvalue()
    return out


def write_seeds(seeds_dir: Path) -> list[Path]:
    """Write the four seed CSVs into ``seeds_dir``; returns the paths written."""
    seeds_dir = Path(seeds_dir)
    seeds_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in seed_texts().items():
        path = seeds_dir / name
        path.write_text(text, encoding="utf-8", newline="")
        written.append(path)
    return written
