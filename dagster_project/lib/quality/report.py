"""The validation summary: one self-contained HTML page plus the same data as JSON.

GX Data Docs pull styles and scripts from a CDN, which these offline machines cannot reach, so the
page is plain HTML with inline CSS, no external URL, and every value HTML-escaped.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path
from dagster_project.lib.quality.results import SuiteResult

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f3f3f3}.pass{color:#1a7f37}.fail{color:#b42318;font-weight:bold}.warn{color:#9a6700}
code{font-size:12px}
"""


def _status(ok: bool, severity: str) -> tuple[str, str]:
    if ok:
        return "pass", "pass"
    return ("fail", "FAIL") if severity == "critical" else ("warn", "warn")


def render_html(results: list[SuiteResult], generated_at: str) -> str:
    esc = html.escape
    total_failed = sum(len(r.failed_critical) + (1 if r.error else 0) for r in results)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Validation summary</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Validation summary (数据质量校验)</h1>",
        f"<p>Generated {esc(generated_at)} · {len(results)} suites · "
        f"{sum(r.evaluated for r in results)} expectations · "
        f"<span class='{'fail' if total_failed else 'pass'}'>{total_failed} blocking failures</span></p>",
        "<table><tr><th>suite</th><th>table</th><th>evaluated</th><th>failed critical</th>"
        "<th>failed warning</th><th>seconds</th><th>verdict</th></tr>",
    ]
    for r in results:
        cls = "pass" if r.success else "fail"
        parts.append(
            f"<tr><td><a href='#{esc(r.suite_name)}'>{esc(r.suite_name)}</a></td><td>{esc(r.table)}</td>"
            f"<td>{r.evaluated}</td><td>{len(r.failed_critical)}</td><td>{len(r.failed_warning)}</td>"
            f"<td>{r.seconds:.2f}</td><td class='{cls}'>{'pass' if r.success else 'BLOCKED'}</td></tr>")
    parts.append("</table>")
    for r in results:
        parts.append(f"<h2 id='{esc(r.suite_name)}'>{esc(r.suite_name)} <small>({esc(r.table)})</small></h2>")
        if r.error:
            parts.append(f"<p class='fail'>Could not run: {esc(r.error)}</p>")
            continue
        parts.append("<table><tr><th>expectation</th><th>severity</th><th>result</th>"
                     "<th>unexpected</th><th>sample</th><th>why</th></tr>")
        for o in r.outcomes:
            cls, text = _status(o.success, o.severity)
            unexpected = "" if o.unexpected_count is None else str(o.unexpected_count)
            sample = ", ".join(str(s) for s in o.sample[:5])
            if o.error:
                sample = f"error: {o.error}"
            parts.append(
                f"<tr><td><code>{esc(o.label)}</code></td><td>{esc(o.severity)}</td>"
                f"<td class='{cls}'>{text}</td><td>{esc(unexpected)}</td><td>{esc(sample)}</td>"
                f"<td>{esc(o.why)}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_summary(results: list[SuiteResult], out_dir: Path, *, timestamped: bool = True) -> Path:
    """Write ``validation-<timestamp>.html/.json`` (if ``timestamped``) and refresh
    ``latest.html/.json``; returns the HTML path written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    generated_at = now.isoformat(timespec="seconds")
    page = render_html(results, generated_at)
    payload = json.dumps({"generated_at": generated_at, "suites": [r.to_dict() for r in results]},
                         ensure_ascii=False, indent=2, default=str)
    (out_dir / "latest.html").write_text(page, encoding="utf-8")
    (out_dir / "latest.json").write_text(payload, encoding="utf-8")
    if not timestamped:
        return out_dir / "latest.html"
    html_path = out_dir / f"validation-{stamp}.html"
    html_path.write_text(page, encoding="utf-8")
    (out_dir / f"validation-{stamp}.json").write_text(payload, encoding="utf-8")
    return html_path
