"""Wound photo computation (no database): segmentation adapter, ArUco scale, size, tissue mix,
periwound redness, infection-risk signals, evidence image and healing trend.

Imports ``perception`` only (never ``stream``, ``overlay`` or ``scopecast``).
See docs/wound-analysis.md.
"""

from telehealth.wound.evidence import render_evidence
from telehealth.wound.geometry import PixelGeometry, measure, pixel_geometry
from telehealth.wound.marker import MarkerPolicy, detect_scale
from telehealth.wound.marker_page import marker_page_html, marker_page_svg
from telehealth.wound.models import (
    CLINICAL_REVIEW_NOTE,
    NOT_MEASURED_NO_MARKER,
    NOT_MEASURED_NO_WOUND,
    NOT_MEASURED_SMALL,
    NOT_MEASURED_STEEP,
    Evidence,
    InfectionRisk,
    MarkerObservation,
    Measurement,
    ModelRef,
    PeriwoundRedness,
    PreviousMeasurement,
    RiskSignal,
    Scale,
    StoredAnalysis,
    TissueComposition,
    WoundAnalysis,
    WoundAssessment,
)
from telehealth.wound.pipeline import analyse_wound_photo
from telehealth.wound.redness import RednessRings, periwound_redness
from telehealth.wound.risk import RiskThresholds, assess_infection_risk
from telehealth.wound.segmentation import (
    OnnxWoundSegmenter,
    Segmenter,
    WoundMask,
    default_wound_model_path,
    fixed_mask_segmenter,
)
from telehealth.wound.tissue import TissueRules, tissue_composition
from telehealth.wound.trend import (
    HealingTrend,
    TissueFractions,
    TrendInterval,
    TrendPlots,
    Visit,
    healing_trend,
    plot_healing_trend,
)

__all__ = [
    "CLINICAL_REVIEW_NOTE",
    "NOT_MEASURED_NO_MARKER",
    "NOT_MEASURED_NO_WOUND",
    "NOT_MEASURED_SMALL",
    "NOT_MEASURED_STEEP",
    "Evidence",
    "HealingTrend",
    "InfectionRisk",
    "MarkerObservation",
    "MarkerPolicy",
    "Measurement",
    "ModelRef",
    "OnnxWoundSegmenter",
    "PeriwoundRedness",
    "PixelGeometry",
    "PreviousMeasurement",
    "RednessRings",
    "RiskSignal",
    "RiskThresholds",
    "Scale",
    "Segmenter",
    "TissueComposition",
    "TissueFractions",
    "TissueRules",
    "TrendInterval",
    "TrendPlots",
    "Visit",
    "WoundAnalysis",
    "WoundAssessment",
    "StoredAnalysis",
    "WoundMask",
    "analyse_wound_photo",
    "assess_infection_risk",
    "default_wound_model_path",
    "detect_scale",
    "fixed_mask_segmenter",
    "healing_trend",
    "marker_page_html",
    "marker_page_svg",
    "measure",
    "periwound_redness",
    "pixel_geometry",
    "plot_healing_trend",
    "render_evidence",
    "tissue_composition",
]
