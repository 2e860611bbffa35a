"""Infection-risk flag: which warning signals are present, each stated with its value and threshold."""

from __future__ import annotations

from dataclasses import dataclass

from telehealth.wound.models import (
    InfectionRisk,
    Measurement,
    PeriwoundRedness,
    PreviousMeasurement,
    RiskSignal,
    TissueComposition,
)


@dataclass(frozen=True)
class RiskThresholds:
    redness_index: float | None = None  # None: use the redness result's own threshold
    necrotic_fraction: float = 0.15
    nonviable_fraction: float = 0.50  # slough + necrotic
    area_increase_pct: float = 20.0


def assess_infection_risk(
    measurement: Measurement,
    tissue: TissueComposition | None,
    redness: PeriwoundRedness | None,
    previous: PreviousMeasurement | None = None,
    thresholds: RiskThresholds | None = None,
    tissue_not_assessed: str | None = None,
) -> InfectionRisk:
    """Flag with reasons; signals that could not be checked are listed, never assumed absent."""
    t = thresholds or RiskThresholds()
    signals: list[RiskSignal] = []
    not_evaluated: list[str] = []

    if redness is None or redness.status != "measured" or redness.index is None:
        why = redness.reason if redness is not None and redness.reason else "not measured"
        not_evaluated.append(f"periwound redness: {why}")
    else:
        limit = t.redness_index if t.redness_index is not None else redness.threshold
        if redness.index > limit:
            signals.append(
                RiskSignal(
                    code="periwound_redness",
                    description=(
                        f"periwound redness index {redness.index:.1f} above {limit:g} (a* ring vs surrounding skin)"
                    ),
                    value=redness.index,
                    threshold=limit,
                )
            )

    if tissue is None:
        not_evaluated.append(tissue_not_assessed or "tissue mix: no wound found")
    else:
        if tissue.necrotic >= t.necrotic_fraction:
            signals.append(
                RiskSignal(
                    code="necrotic_tissue",
                    description=f"necrotic tissue {tissue.necrotic:.0%} of the wound bed (>= {t.necrotic_fraction:.0%})",
                    value=tissue.necrotic,
                    threshold=t.necrotic_fraction,
                )
            )
        nonviable = tissue.necrotic + tissue.slough
        if nonviable >= t.nonviable_fraction:
            signals.append(
                RiskSignal(
                    code="nonviable_tissue",
                    description=(
                        f"slough + necrotic tissue {nonviable:.0%} of the wound bed (>= {t.nonviable_fraction:.0%})"
                    ),
                    value=nonviable,
                    threshold=t.nonviable_fraction,
                )
            )

    if previous is None:
        not_evaluated.append("area change: no previous measurement given")
    elif previous.area_cm2 is None or previous.area_cm2 <= 0:
        not_evaluated.append("area change: previous visit was not measured")
    elif measurement.area_cm2 is None:
        not_evaluated.append("area change: " + (measurement.reason or "this photo was not measured"))
    else:
        change = (measurement.area_cm2 / previous.area_cm2 - 1.0) * 100.0
        if change > t.area_increase_pct:
            signals.append(
                RiskSignal(
                    code="area_increase",
                    description=(
                        f"wound area up {change:.0f}% since the previous visit "
                        f"({previous.area_cm2:.2f} -> {measurement.area_cm2:.2f} cm2; "
                        f"> {t.area_increase_pct:g}%)"
                    ),
                    value=change,
                    threshold=t.area_increase_pct,
                )
            )

    return InfectionRisk(flagged=bool(signals), signals=signals, not_evaluated=not_evaluated)
