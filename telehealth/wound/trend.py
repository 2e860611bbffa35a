"""Healing trend across a case's visits: weekly area change and a plot (PNG + SVG)."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

TREND_METHOD = (
    "weekly % change between two measured visits = ((A2/A1)^(7/days) - 1) x 100, i.e. the constant "
    "weekly rate that turns A1 into A2 (wound area tends to shrink geometrically); visits without a "
    "scale marker have no area and are skipped, never counted as zero"
)


class TissueFractions(BaseModel):
    model_config = ConfigDict(frozen=True)

    granulation: float = Field(ge=0, le=1)
    slough: float = Field(ge=0, le=1)
    necrotic: float = Field(ge=0, le=1)
    unclassified: float = Field(default=0.0, ge=0, le=1)


class Visit(BaseModel):
    model_config = ConfigDict(frozen=True)

    when: date
    area_cm2: float | None = Field(default=None, ge=0)
    tissue: TissueFractions | None = None
    length_cm: float | None = Field(default=None, ge=0)
    width_cm: float | None = Field(default=None, ge=0)


class TrendInterval(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: date
    end: date
    days: int
    area_start_cm2: float
    area_end_cm2: float
    weekly_change_pct: float | None  # None when both visits fall on the same day
    skipped_unmeasured: int  # visits in between that had no area


class HealingTrend(BaseModel):
    model_config = ConfigDict(frozen=True)

    visits: list[Visit]
    intervals: list[TrendInterval]
    overall_weekly_change_pct: float | None  # first to last measured visit
    area_change_pct: float | None  # last vs first measured area (negative = smaller)
    measured_visits: int
    unmeasured_visits: int
    method: str = TREND_METHOD

    @property
    def too_few_measured(self) -> str | None:
        """A plain sentence when there is no trend to show, else None."""
        if self.measured_visits >= 2:
            return None
        have = "no measured visit" if self.measured_visits == 0 else "1 measured visit"
        return (
            f"Too few measured visits for a trend: {have} so far. A trend needs photos with the scale marker on at "
            "least two different days."
        )


def weekly_change_pct(a0: float, a1: float, days: int) -> float | None:
    if days <= 0 or a0 <= 0:
        return None
    return ((a1 / a0) ** (7.0 / days) - 1.0) * 100.0


def healing_trend(visits: list[Visit]) -> HealingTrend:
    """Visits are days: give one Visit per day (see telehealth.case_trend for how a day's photos become one)."""
    ordered = sorted(visits, key=lambda v: v.when)
    measured = [(i, v, v.area_cm2) for i, v in enumerate(ordered) if v.area_cm2 is not None]
    intervals = []
    for (i0, v0, area0), (i1, v1, area1) in zip(measured, measured[1:]):
        days = (v1.when - v0.when).days
        intervals.append(
            TrendInterval(
                start=v0.when,
                end=v1.when,
                days=days,
                area_start_cm2=area0,
                area_end_cm2=area1,
                weekly_change_pct=weekly_change_pct(area0, area1, days),
                skipped_unmeasured=i1 - i0 - 1,
            )
        )
    overall = change = None
    if len(measured) >= 2:
        (_, first, first_area), (_, last, last_area) = measured[0], measured[-1]
        overall = weekly_change_pct(first_area, last_area, (last.when - first.when).days)
        if first_area:
            change = (last_area / first_area - 1.0) * 100.0
    return HealingTrend(
        visits=ordered,
        intervals=intervals,
        overall_weekly_change_pct=overall,
        area_change_pct=change,
        measured_visits=len(measured),
        unmeasured_visits=len(ordered) - len(measured),
    )


class TrendPlots(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    png: bytes
    svg: bytes


TISSUE_COLOURS = {"granulation": "#c62828", "slough": "#f2c94c", "necrotic": "#222222", "unclassified": "#bdbdbd"}


def plot_healing_trend(
    trend: HealingTrend,
    *,
    png_path: str | Path | None = None,
    svg_path: str | Path | None = None,
    title: str = "Wound healing trend",
) -> TrendPlots:
    """Area over time (top) and stacked tissue mix (bottom); unmeasured visits as hollow markers.

    Uses a bare ``Figure`` with the Agg canvas, not pyplot: no global figure
    state, safe in a server thread.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter, date2num
    from matplotlib.figure import Figure

    visits = trend.visits
    fig = Figure(figsize=(8, 6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax_area, ax_tis = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    xs = [date2num(v.when) for v in visits]

    # Area: solid line only between consecutive measured visits; dashed across unmeasured ones.
    pts = [(x, v.area_cm2) for x, v in zip(xs, visits) if v.area_cm2 is not None]
    for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
        gap = any(xa < x < xb for x, v in zip(xs, visits) if v.area_cm2 is None)
        ax_area.plot([xa, xb], [ya, yb], color="#1565c0", linestyle="--" if gap else "-", linewidth=1.8)
    if pts:
        ax_area.plot([p[0] for p in pts], [p[1] for p in pts], "o", color="#1565c0", label="measured area")
    missing = [x for x, v in zip(xs, visits) if v.area_cm2 is None]
    if missing:
        # Hollow markers pinned to the bottom of the axes: the visit happened, its area is unknown.
        ax_area.plot(
            missing,
            [0.04] * len(missing),
            "o",
            mfc="none",
            mec="#757575",
            markersize=8,
            transform=ax_area.get_xaxis_transform(),
            linestyle="none",
            label="no scale marker",
        )
        for x in missing:
            ax_area.axvline(x, color="#bdbdbd", linestyle=":", linewidth=1)
            ax_area.text(
                x,
                0.09,
                "not measured",
                transform=ax_area.get_xaxis_transform(),
                ha="center",
                fontsize=7,
                color="#616161",
            )
    ax_area.set_ylabel("area (cm²)")
    ax_area.set_ylim(bottom=0, top=max([p[1] for p in pts], default=1.0) * 1.2 or 1.0)
    for iv in trend.intervals:
        if iv.weekly_change_pct is not None:
            xm = (date2num(iv.start) + date2num(iv.end)) / 2
            ym = (iv.area_start_cm2 + iv.area_end_cm2) / 2
            ax_area.annotate(
                f"{iv.weekly_change_pct:+.0f}%/wk",
                (xm, ym),
                textcoords="offset points",
                xytext=(0, 8),
                ha="center",
                fontsize=8,
                color="#0d47a1",
            )
    ax_area.set_title(title)
    if pts or missing:
        ax_area.legend(loc="upper right", fontsize=8)
    ax_area.grid(alpha=0.3)

    width = 0.6 * (min((b - a) for a, b in zip(xs, xs[1:]) if b > a) if len(set(xs)) > 1 else 1.0)
    for x, v in zip(xs, visits):
        if v.tissue is None:
            ax_tis.bar(x, 1.0, width=width, fill=False, edgecolor="#9e9e9e", hatch="//")
            continue
        bottom = 0.0
        for name, colour in TISSUE_COLOURS.items():
            val = getattr(v.tissue, name)
            ax_tis.bar(x, val, width=width, bottom=bottom, color=colour)
            bottom += val
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=n) for n, c in TISSUE_COLOURS.items()]
    handles.append(Patch(fill=False, edgecolor="#9e9e9e", hatch="//", label="no tissue data"))
    ax_tis.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=5, fontsize=8)
    ax_tis.set_ylim(0, 1)
    ax_tis.set_ylabel("tissue mix")
    ax_tis.set_xticks(sorted(set(xs)))  # one tick per visit date, not matplotlib's calendar ticks
    ax_tis.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    for lbl in ax_tis.get_xticklabels():
        lbl.set_rotation(30)
        lbl.set_ha("right")

    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png")
    fig.savefig(svg, format="svg", metadata={"Date": None})
    plots = TrendPlots(png=png.getvalue(), svg=svg.getvalue())
    if png_path is not None:
        Path(png_path).write_bytes(plots.png)
    if svg_path is not None:
        Path(svg_path).write_bytes(plots.svg)
    return plots
