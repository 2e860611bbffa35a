"""Healing trend: weekly % change and plots, with visits that had no scale marker."""

from __future__ import annotations

from datetime import date

import pytest

from telehealth.wound import TissueFractions, Visit, healing_trend, plot_healing_trend

MIX = TissueFractions(granulation=0.6, slough=0.3, necrotic=0.1)


def series() -> list[Visit]:
    return [
        Visit(when=date(2025, 3, 15), area_cm2=8.1, tissue=MIX),  # given out of order on purpose
        Visit(when=date(2025, 3, 1), area_cm2=10.0, tissue=MIX),
        Visit(when=date(2025, 3, 8), area_cm2=9.0, tissue=TissueFractions(granulation=0.7, slough=0.25, necrotic=0.05)),
        Visit(when=date(2025, 3, 22), area_cm2=None, tissue=MIX),  # no marker in that photo
        Visit(when=date(2025, 3, 29), area_cm2=6.561, tissue=None),
    ]


def test_weekly_change_on_hand_made_series():
    t = healing_trend(series())
    assert [v.when.day for v in t.visits] == [1, 8, 15, 22, 29]
    assert t.measured_visits == 4 and t.unmeasured_visits == 1
    changes = [iv.weekly_change_pct for iv in t.intervals]
    # 10 -> 9 in a week: -10 %/wk; 9 -> 8.1: -10 %/wk; 8.1 -> 6.561 over two weeks: -10 %/wk compounded.
    assert changes == pytest.approx([-10.0, -10.0, -10.0])
    assert [iv.skipped_unmeasured for iv in t.intervals] == [0, 0, 1]
    assert t.intervals[-1].days == 14
    assert t.overall_weekly_change_pct == pytest.approx(-10.0)
    assert t.area_change_pct == pytest.approx(-34.39)
    assert "never counted as zero" in t.method


def test_trend_with_too_few_measurements():
    t = healing_trend([Visit(when=date(2025, 1, 1), area_cm2=None), Visit(when=date(2025, 1, 9), area_cm2=3.0)])
    assert t.intervals == [] and t.overall_weekly_change_pct is None and t.area_change_pct is None
    same_day = healing_trend([Visit(when=date(2025, 1, 1), area_cm2=2.0), Visit(when=date(2025, 1, 1), area_cm2=3.0)])
    assert same_day.intervals[0].weekly_change_pct is None


def test_plot_files_written(tmp_path):
    t = healing_trend(series())
    plots = plot_healing_trend(t, png_path=tmp_path / "trend.png", svg_path=tmp_path / "trend.svg")
    png, svg = (tmp_path / "trend.png").read_bytes(), (tmp_path / "trend.svg").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000 and png == plots.png
    assert b"<svg" in svg and len(svg) > 5000 and svg == plots.svg
    assert b"no scale marker" in svg  # the unmeasured visit is labelled, not drawn as zero


def test_plot_all_unmeasured_and_single_visit():
    only_missing = healing_trend([Visit(when=date(2025, 1, 1)), Visit(when=date(2025, 1, 8))])
    assert plot_healing_trend(only_missing).png.startswith(b"\x89PNG")
    single = healing_trend([Visit(when=date(2025, 1, 1), area_cm2=2.0, tissue=MIX)])
    assert plot_healing_trend(single).svg.startswith(b"<?xml")
