"""The report's charts as PNG images for e-mail (docs/bi.md#the-monthly-e-mail).

Mail clients that strip ``<style>`` and inline SVG (Outlook's Word engine, many webmail
sanitisers) still show an ``<img>`` whose source is a MIME part of the message (``cid:``), so the
mailed charts are PNG files rendered here with matplotlib's Agg backend (no display, no browser).

Labels are English (branch codes and the English stage names): the fonts matplotlib ships
(DejaVu) have no Chinese glyphs, and a report must not depend on fonts installed on the machine.
The Chinese names stay in the HTML around each chart and in its alt text, which mail clients show
when images are blocked. Every chart reads without colour: the branch under discussion is hatched,
reference lines are dashed and labelled.

PNG output is made deterministic (no timestamp or software tag in the file), so re-rendering an
unchanged period gives identical bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from dagster_project.lib.report.metrics import STAGE_LABELS

DPI = 100
_PYPLOT = None
_HATCH = "///"
_BAR = "#4f81bd"
_OVER = "#c62828"
_OWN = "#1f4e79"


@dataclass(frozen=True)
class Chart:
    """One inline image: ``name`` is unique within a message (its file name and Content-ID stem)."""

    name: str
    png: bytes
    alt: str
    width: int  # pixels, for the <img> width attribute (clients that ignore the PNG's own size)
    height: int

    @property
    def filename(self) -> str:
        return f"{self.name}.png"


def _pyplot():
    """matplotlib's pyplot on the Agg backend (no display on servers, no GUI toolkit installed),
    imported on first use: it costs over a second, and most processes that import the report
    modules (every CLI command, the Dagster definitions) never draw a chart."""
    global _PYPLOT
    if _PYPLOT is None:
        import matplotlib  # deferred: pyplot costs over a second to import (above)

        matplotlib.use("Agg")  # before pyplot
        import matplotlib.pyplot as plt  # deferred, with matplotlib

        _PYPLOT = plt
    return _PYPLOT


def _finish(fig, name: str, alt: str) -> Chart:
    buffer = io.BytesIO()
    # metadata None: no Software/creation stamp, so identical figures give identical bytes
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    width, height = (int(round(v)) for v in fig.get_size_inches() * DPI)
    plt = _pyplot()
    plt.close(fig)
    return Chart(name, buffer.getvalue(), alt, width, height)


def _stage_en(stage: str) -> str:
    return STAGE_LABELS.get(stage, (stage, stage))[1]


def heatmap_png(cells, branches: list[str], stages: list[str], *, name: str = "csat-heatmap") -> Chart:
    """Branch × stage CSAT as a grid of coloured cells with the value written in each (low-sample
    cells marked with †, cells significantly below the company with a heavy border)."""
    by_key = {(c.branch_code, c.stage): c for c in cells}
    fig_h = 0.9 + 0.32 * max(1, len(branches))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.1 + 1.15 * max(1, len(stages)), fig_h))
    cmap = plt.get_cmap("RdYlGn")
    for i, branch in enumerate(branches):
        for j, stage in enumerate(stages):
            cell = by_key.get((branch, stage))
            csat = None if cell is None else cell.csat
            colour = "#e0e0e0" if csat is None else cmap(min(1.0, max(0.0, (csat - 0.60) / 0.35)))
            below = bool(cell and cell.significantly_below)
            ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor=colour, edgecolor="black" if below else "white",
                                       linewidth=2.5 if below else 1.0))
            label = "–" if csat is None else f"{csat * 100:.1f}%" + ("†" if cell.low_sample else "")
            ax.text(j + 0.5, i + 0.5, label, ha="center", va="center", fontsize=8)
    ax.set_xlim(0, len(stages))
    ax.set_ylim(len(branches), 0)
    ax.set_xticks([j + 0.5 for j in range(len(stages))], [_stage_en(s) for s in stages], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([i + 0.5 for i in range(len(branches))], branches, fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.tight_layout()
    worst = sorted((c for c in cells if c.csat is not None), key=lambda c: c.csat)[:3]
    alt = ("Heat map of CSAT (share satisfied) by branch and stage, "
           f"{len(branches)} branches × {len(stages)} stages"
           + ("; lowest cells: " + ", ".join(f"{c.branch_code} {_stage_en(c.stage)} {c.csat * 100:.1f}%"
                                             for c in worst) if worst else "")
           + ". The table below the chart has every value.")
    return _finish(fig, name, alt)


def hbar_png(items: list[tuple[str, float | None]], *, name: str, title: str, value_format,
             reference: float | None = None, reference_label: str = "", highlight: str | None = None,
             max_value: float | None = None) -> Chart:
    """Horizontal bars (label, value), one per branch; bars beyond ``reference`` red, the
    ``highlight`` label's bar hatched (a branch page's own branch)."""
    shown = [(label, value) for label, value in items]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.7 + 0.26 * max(1, len(shown))))
    labels = [label for label, _ in shown]
    values = [0.0 if v is None else v for _, v in shown]
    colours = [_OVER if reference is not None and v is not None and v > reference else
               (_OWN if label == highlight else _BAR) for label, v in shown]
    bars = ax.barh(range(len(shown)), values, color=colours, height=0.7)
    for bar, (label, value) in zip(bars, shown):
        if label == highlight:
            bar.set_hatch(_HATCH)
            bar.set_edgecolor("white")
        # a branch without a value this month (no complaints closed, no calls) shows a dash, no bar
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + ("–" if value is None else value_format(value)),
                va="center", fontsize=7)
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    ax.invert_yaxis()
    top = max([*values, reference or 0.0, max_value or 0.0, 1e-9])
    ax.set_xlim(0, top * 1.18)
    if reference is not None:
        # in the legend, not beside the line: a label at the top collides with the title
        ax.axvline(reference, color="black", linestyle="--", linewidth=1, label=reference_label)
        ax.legend(fontsize=7, loc="lower right", frameon=False)
    ax.set_title(title, fontsize=9, loc="left")
    ax.tick_params(axis="x", labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    present = [(label, v) for label, v in shown if v is not None]
    extremes = ""
    if present:
        hi = max(present, key=lambda p: p[1])
        lo = min(present, key=lambda p: p[1])
        extremes = f"; highest {hi[0]} {value_format(hi[1])}, lowest {lo[0]} {value_format(lo[1])}"
    alt = (f"Bar chart: {title}, {len(shown)} bars{extremes}"
           + (f"; dashed line at {reference_label}" if reference is not None else "")
           + (f"; {highlight} highlighted" if highlight else "") + ".")
    return _finish(fig, name, alt)


def interval_png(cells, *, name: str = "weakest-cells", title: str) -> Chart:
    """Each cell's CSAT as a dot with its 95% Wilson interval on a 0–100% axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.3 * max(1, len(cells))))
    for i, c in enumerate(cells):
        if c.wilson_low is not None and c.wilson_high is not None:
            ax.plot([c.wilson_low * 100, c.wilson_high * 100], [i, i], color=_OWN, linewidth=2)
        if c.csat is not None:
            ax.plot([c.csat * 100], [i], marker="o", color=_OVER, markersize=5)
    ax.set_yticks(range(len(cells)), [f"{c.branch_code} · {_stage_en(c.stage)}" for c in cells], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("CSAT, % (dot) with 95% interval (line)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", color="#e5e5e5")
    ax.set_title(title, fontsize=9, loc="left")
    fig.tight_layout()
    alt = (f"Dot-and-interval chart: {title}: "
           + "; ".join(f"{c.branch_code} {_stage_en(c.stage)} {c.csat * 100:.1f}% "
                       f"(95% interval {c.wilson_low * 100:.1f}–{c.wilson_high * 100:.1f}%)"
                       for c in cells if c.csat is not None and c.wilson_low is not None) + ".")
    return _finish(fig, name, alt)


def stage_comparison_png(own: dict[str, float | None], company: dict[str, float | None], *, branch: str,
                         name: str = "stage-csat") -> Chart:
    """A branch's CSAT per stage beside the company's (paired bars; the branch hatched)."""
    stages = [s for s in STAGE_LABELS if s in own or s in company]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    xs = range(len(stages))
    own_v = [(own.get(s) or 0.0) * 100 for s in stages]
    comp_v = [(company.get(s) or 0.0) * 100 for s in stages]
    bars = ax.bar([x - 0.2 for x in xs], own_v, width=0.4, color=_OWN, hatch=_HATCH, edgecolor="white",
                  label=branch)
    ax.bar([x + 0.2 for x in xs], comp_v, width=0.4, color="#b0b0b0", label="Company")
    for bar, s in zip(bars, stages):
        if own.get(s) is not None:
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{own[s] * 100:.1f}",
                    ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(xs), [_stage_en(s) for s in stages], fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("CSAT, %", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    alt = (f"Bar chart: CSAT per stage, {branch} against the company: "
           + "; ".join(f"{_stage_en(s)} {branch} "
                       + ("–" if own.get(s) is None else f"{own[s] * 100:.1f}%")
                       + " vs company " + ("–" if company.get(s) is None else f"{company[s] * 100:.1f}%")
                       for s in stages) + ".")
    return _finish(fig, name, alt)


def stacked_share_png(shares: list[tuple[str, float]], *, name: str = "segments", title: str) -> Chart:
    """One horizontal bar split into shares (the customer segment mix), hatches besides colours."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 1.5))
    colours = ["#2e7d32", "#9ccc65", "#f9a825", "#c62828", "#777777"]
    hatches = ["", "..", "//", "xx", "--"]
    left = 0.0
    for i, (label, share) in enumerate(shares):
        ax.barh([0], [share * 100], left=[left], color=colours[i % 5], hatch=hatches[i % 5],
                edgecolor="white", label=f"{label} {share * 100:.1f}%")
        left += share * 100
    ax.set_xlim(0, 100)
    ax.set_yticks([])
    ax.set_title(title, fontsize=9, loc="left")
    ax.legend(fontsize=7, ncol=min(5, max(1, len(shares))), loc="upper center", bbox_to_anchor=(0.5, -0.25),
              frameon=False)
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    alt = f"Stacked bar: {title}: " + "; ".join(f"{label} {share * 100:.1f}%" for label, share in shares) + "."
    return _finish(fig, name, alt)
