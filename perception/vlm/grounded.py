"""The default backend when no VLM is configured: answers from perception's
findings (and supplied measurements) only, never from pixels.

Every sentence it produces is traceable to a Finding or a measurement, so it
cannot hallucinate; anything the detections cannot support (diagnosis,
treatment, identity, open-ended questions) gets a plain refusal saying why.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncGenerator

from perception.findings import Finding, FrameFindings
from perception.vlm.base import AskRequest, ReportContext, VlmInfo
from perception.vlm.clinical_words import clinical_summary, confidence_word, count_words, finding_sentence
from perception.vlm.geometry import area_fraction, box_gap_px, percent, region_words
from perception.vlm.intents import Intent, IntentMatcher
from perception.vlm.measurements import Box, Measurements
from perception.vlm.prompts import format_measurement_value
from perception.vlm.report import ReportDraft

VERSION = "1.0"
# Two boxes closer than this share of the frame diagonal count as "near".
NEAR_FRACTION = 0.05
# Words that name the same thing as a model label.
_SYNONYMS = {
    "tool": "instrument",
    "tools": "instrument",
    "instruments": "instrument",
    "ulcer": "wound",
    "ulcers": "wound",
}
# Things a clinician may ask about that a given model may not detect; naming
# one that is not among the model's labels gets "not detected", never a guess.
COMMON_TERMS = (
    "wound",
    "ulcer",
    "polyp",
    "instrument",
    "tool",
    "bleeding",
    "blood",
    "lesion",
    "tumour",
    "tumor",
    "gauze",
    "needle",
    "suture",
    "clip",
    "stapler",
    "scissors",
    "grasper",
    "catheter",
    "stone",
    "bone",
    "vessel",
    "smoke",
)
_DECLINE = "I can't answer that from the detections: "


def _plural(label: str, n: int) -> str:
    return label if n == 1 else (label + "es" if label.endswith(("s", "x", "ch", "sh")) else label + "s")


def _article(label: str) -> str:
    return "an" if label[:1].lower() in "aeiou" else "a"


def _label_pattern(label: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(w) for w in label.lower().replace("_", " ").split())
    return re.compile(rf"\b{words}(?:e?s)?\b", re.IGNORECASE)


def named_regions(measurements: Measurements) -> dict[str, Box]:
    """Regions a clinician marked on the frame, by name."""
    return {str(name): (int(x0), int(y0), int(x1), int(y1)) for name, (x0, y0, x1, y1) in measurements.regions.items()}


def _confidence_range(scores: list[float]) -> str:
    words = sorted({confidence_word(score) for score in scores}, key=("low", "moderate", "high").index)
    return words[0] if len(words) == 1 else f"{words[0]} to {words[-1]}"


class GroundedAnswerer:
    """Pure (synchronous) question → answer text from findings; wrapped by the backend."""

    def __init__(self, matcher: IntentMatcher | None = None) -> None:
        self.matcher = matcher or IntentMatcher()

    # ----- which objects the question is about -----
    def mentioned(self, question: str, findings: FrameFindings | None, measurements: Measurements) -> list[str]:
        """Labels and region names mentioned in the question, in the order they appear."""
        vocab = set(named_regions(measurements))
        if findings is not None:
            vocab |= {f.label for f in findings.objects} | set(findings.model.labels)
        hits: list[tuple[int, str]] = []
        for name in vocab:
            m = _label_pattern(name).search(question)
            if m:
                hits.append((m.start(), name))
        for word, label in _SYNONYMS.items():
            m = re.search(rf"\b{word}\b", question, re.I)
            if m and label in vocab and all(n != label for _, n in hits):
                hits.append((m.start(), label))
        # Longer names first at the same position ("marked region" over "region").
        hits.sort(key=lambda h: (h[0], -len(h[1])))
        seen: list[str] = []
        for _, name in hits:
            if name not in seen:
                seen.append(name)
        return seen

    def unknown_terms(self, question: str, findings: FrameFindings, measurements: Measurements) -> list[str]:
        """Common object words in the question that are not labels of this model."""
        vocab = {
            v.lower()
            for v in set(findings.model.labels) | {f.label for f in findings.objects} | set(named_regions(measurements))
        }
        vocab |= {w for w, lb in _SYNONYMS.items() if lb in vocab}
        return [t for t in COMMON_TERMS if t not in vocab and _label_pattern(t).search(question)]

    def _not_looked_for(self, terms: list[str], findings: FrameFindings, *, yes_no: bool) -> str:
        known = sorted(set(findings.model.labels) | {f.label for f in findings.objects})
        return (
            f"{'No: no' if yes_no else 'No'} {' or '.join(terms)} was detected in this frame; "
            f"the detection model ({findings.model.name}) reports only: {', '.join(known) or 'nothing'}."
        )

    def answer(self, request: AskRequest) -> str:
        q = request.question
        intent = self.matcher.match(q)
        findings = request.findings
        meas = request.measurements
        labels = self.mentioned(q, findings, meas)
        if not labels and request.history:
            # "and how large is it?" after "where is the wound?": carry the subject over.
            labels = self.mentioned(request.history[-1].question, findings, meas)
        if intent == Intent.UNSUPPORTED:
            return self._decline(q)
        if intent in (Intent.TISSUE, Intent.INFECTION):
            return self._tissue(meas) if intent == Intent.TISSUE else self._infection(meas)
        if findings is None:
            return _DECLINE + "no detection results are available for this frame."
        if findings.withheld and findings.content is not None:  # withheld means the gate judged: content is set
            # The model said nothing about this frame: "no polyp" would be a claim it cannot make.
            return (
                f"I cannot answer from the detections: this frame does not look like {findings.content.content}, "
                f"so the {findings.model.name} model withheld its findings. Please judge the image yourself."
            )
        if not labels:
            unknown = self.unknown_terms(q, findings, meas)
            if unknown and intent not in (Intent.DESCRIBE,):
                return self._not_looked_for(unknown, findings, yes_no=intent == Intent.PRESENCE)
        handler = {
            Intent.DESCRIBE: self._describe,
            Intent.COUNT: self._count,
            Intent.LOCATION: self._location,
            Intent.SIZE: self._size,
            Intent.CONFIDENCE: self._confidence,
            Intent.PRESENCE: self._presence,
            Intent.PROXIMITY: self._proximity,
        }[intent]
        return handler(q, findings, labels, meas)

    # ----- intents -----
    def _decline(self, q: str) -> str:
        low = q.lower()
        if re.search(r"diagnos|cancer|malignan|benign|carcinom|tumou?r|prognos", low):
            why = "it asks for a diagnosis, which only a clinician can make."
        elif re.search(r"treat|therap|prescri|medicat|drug|antibiotic|dose|operate|remove", low):
            why = "it asks for a treatment decision, which only a clinician can make."
        elif re.search(r"who is|whose|name|identity|patient'?s? (?:age|id)", low):
            why = "it asks about a person's identity, which is never inferred from the video."
        else:
            why = "the detections do not contain that information."
        return (
            _DECLINE + why + " I can say what is detected, how many, where, how large, how confident the model is, "
            "and whether two objects are near each other."
        )

    def _targets(self, findings: FrameFindings, labels: list[str]) -> list[Finding]:
        objs = [f for f in findings.objects if not labels or f.label in labels]
        return sorted(objs, key=lambda f: area_fraction(f, findings.frame_size), reverse=True)

    def _describe(self, q: str, findings: FrameFindings, labels: list[str], meas: Measurements) -> str:
        text = clinical_summary(findings)
        extra = meas.facts()
        if extra:
            text += (
                " Measurements: "
                + "; ".join(f"{k.replace('_', ' ')} {format_measurement_value(v)}" for k, v in extra.items())
                + "."
            )
        return text

    def _count(self, q: str, findings: FrameFindings, labels: list[str], meas: Measurements) -> str:
        if labels:
            parts = [f"{n} {_plural(lb, n)}" for lb in labels for n in [sum(f.label == lb for f in findings.objects)]]
            return (
                "There "
                + ("is " if parts[0].startswith("1 ") and len(parts) == 1 else "are ")
                + " and ".join(parts)
                + " detected in this frame."
            )
        counts: dict[str, int] = {}
        for f in findings.objects:
            counts[f.label] = counts.get(f.label, 0) + 1
        if not counts:
            return "Nothing is detected in this frame."
        total = sum(counts.values())
        kinds = " and ".join(count_words(n, lb) for lb, n in counts.items())
        return f"{kinds[0].upper()}{kinds[1:]} in this frame" + ("." if len(counts) == 1 else f" ({total} in all).")

    def _not_found(self, findings: FrameFindings, labels: list[str]) -> str:
        what = " or ".join(labels) if labels else "object"
        return f"No {what} was detected in this frame."

    def _location(self, q: str, findings: FrameFindings, labels: list[str], meas: Measurements) -> str:
        objs = self._targets(findings, labels)
        if not objs:
            return self._not_found(findings, labels)
        size = findings.frame_size

        def where(f: Finding) -> str:
            x0, y0, x1, y1 = f.box
            return f"the {region_words(f.box, size)} of the frame (box x {x0}-{x1}, y {y0}-{y1} px)"

        if len(objs) == 1:
            return f"The {objs[0].label} is in {where(objs[0])}."
        rest = "; ".join(f"{_article(f.label)} {f.label} in {where(f)}" for f in objs[1:])
        return f"There are {len(objs)} detections. The largest, {_article(objs[0].label)} {objs[0].label}, is in {where(objs[0])}; also {rest}."

    def _size(self, q: str, findings: FrameFindings, labels: list[str], meas: Measurements) -> str:
        objs = self._targets(findings, labels)
        if not objs:
            return self._not_found(findings, labels)
        label = labels[0] if len(labels) == 1 else objs[0].label
        frac = sum(area_fraction(f, findings.frame_size) for f in objs)
        frac = min(frac, 1.0)
        noun = f"the {label}" if len(objs) == 1 else f"the {len(objs)} {_plural(label, len(objs))} together"
        cm2 = meas.area_of(label)
        physical = (
            f" The measured area is {format_measurement_value(cm2)} cm²."
            if cm2 is not None
            else " No calibrated measurement is available, so the size in cm² is not known."
        )
        m = re.search(r"(\d+(?:\.\d+)?)\s*(?:%|percent)", q)
        if m:
            thr = float(m.group(1)) / 100.0
            smaller = re.search(r"\b(smaller|less|under|below)\b", q, re.I) is not None
            bigger = frac > thr
            yes = (not bigger) if smaller else bigger
            rel = "more" if bigger else "less"
            return f"{'Yes' if yes else 'No'}: {noun} cover{'s' if len(objs) == 1 else ''} about {percent(frac)} of the frame, {rel} than {m.group(1)}%.{physical}"
        return f"{noun[0].upper()}{noun[1:]} cover{'s' if len(objs) == 1 else ''} about {percent(frac)} of the frame.{physical}"

    def _confidence(self, q: str, findings: FrameFindings, labels: list[str], meas: Measurements) -> str:
        objs = self._targets(findings, labels)
        if not objs:
            return self._not_found(findings, labels)
        parts = [f"{f.label} in the {region_words(f.box, findings.frame_size)}: {f.score:.2f}" for f in objs]
        return (
            f"Detection confidence from {findings.model.name} {findings.model.version}: " + "; ".join(parts) + ". "
            "These are the model's scores, not a clinical probability."
        )

    def _presence(self, q: str, findings: FrameFindings, labels: list[str], meas: Measurements) -> str:
        if not labels:
            asked = re.search(
                r"\b(?:is there|are there|do you see|any|see)\s+(?:a|an|any|some|the)?\s*([a-z]+)", q, re.I
            )
            generic = {
                "object",
                "objects",
                "detection",
                "detections",
                "thing",
                "things",
                "finding",
                "findings",
                "anything",
            }
            if asked and asked.group(1).lower() not in generic:
                known = sorted(set(findings.model.labels) | {f.label for f in findings.objects})
                return (
                    f"{_DECLINE}the detection model does not look for '{asked.group(1)}'; "
                    f"it reports only: {', '.join(known) or 'nothing'}."
                )
            if not findings.objects:
                return "No, nothing was detected in this frame."
            return "Yes. " + clinical_summary(findings)
        objs = self._targets(findings, labels)
        if not objs:
            return f"No, no {' or '.join(labels)} was detected in this frame."
        best = objs[0]
        where = (
            f"(confidence {best.score:.2f}) in the {region_words(best.box, findings.frame_size)} "
            f"of the frame, covering about {percent(area_fraction(best, findings.frame_size))} of it"
        )
        if len(objs) > 1:
            return f"Yes, {len(objs)} {_plural(best.label, len(objs))} were detected; the largest is {where}."
        return f"Yes, {_article(best.label)} {best.label} was detected {where}."

    def _proximity(self, q: str, findings: FrameFindings, labels: list[str], meas: Measurements) -> str:
        regions = named_regions(meas)
        boxes: list[tuple[str, tuple[int, int, int, int]]] = []
        for name in labels:
            if name in regions:
                boxes.append((name, regions[name]))
            else:
                objs = self._targets(findings, [name])
                if objs:
                    boxes.append((name, objs[0].box))
        if len(boxes) == 1 and len(labels) == 1:
            # "is the instrument near anything?": compare with the single other object.
            others = [f for f in findings.objects if f.label != labels[0]]
            if len(others) == 1:
                boxes.append((others[0].label, others[0].box))
        if len(boxes) < 2:
            missing = [n for n in labels if n not in dict(boxes)]
            why = (
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not detected or marked"
                if missing
                else "I need two detected objects or a marked region to compare"
            )
            return _DECLINE + why + "."
        (na, a), (nb, b) = boxes[0], boxes[1]
        gap = box_gap_px(a, b)
        w, h = findings.frame_size
        diag = math.hypot(w, h) or 1.0
        if gap == 0:
            return f"Yes: the {na} touches or overlaps the {nb} (their boxes overlap)."
        near = gap / diag <= NEAR_FRACTION
        return (
            f"{'Yes' if near else 'No'}: the {na} is {gap:.0f} px from the {nb} "
            f"({percent(gap / diag)} of the frame diagonal; 'near' means within {percent(NEAR_FRACTION)})."
        )

    def _tissue(self, meas: Measurements) -> str:
        mix = meas.tissue_mix
        if mix is None:
            return (
                _DECLINE
                + "no tissue-mix measurement is available for this frame; the detections give only outlines and sizes."
            )
        return f"Measured tissue mix: {format_measurement_value(mix.shares())}. This is a measurement for the clinician to review, not a diagnosis."

    def _infection(self, meas: Measurements) -> str:
        signals = list(meas.infection_signals)
        signals += [f"{name} {100 * share:.0f}% of the wound bed" for name, share in meas.necrotic_or_slough().items()]
        if not signals:
            return (
                _DECLINE
                + "no infection-related measurements are available, and detections alone cannot show infection."
            )
        return (
            "Measured signals that can accompany infection risk: " + "; ".join(signals) + ". "
            "These are signals for the clinician to assess, not a diagnosis of infection."
        )

    # ----- reports -----
    def draft(self, context: ReportContext, info: VlmInfo) -> ReportDraft:
        lines: list[str] = []
        labels: dict[str, int] = {}
        scores: list[float] = []
        withheld = sum(1 for ff in context.findings if ff.withheld)
        for ff in context.findings:
            for f in ff.objects:
                lines.append(finding_sentence(f, ff))
                labels[f.label] = labels.get(f.label, 0) + 1
                scores.append(f.score)
        meas = context.measurements
        n_frames = len(context.findings)
        if labels:
            summary = ", ".join(f"{n} {_plural(lb, n)}" for lb, n in labels.items())
            impression = f"The detection model reported {summary} across {n_frames} frame(s). No diagnosis is made by this draft."
        else:
            impression = (
                f"The detection model reported nothing across {n_frames} frame(s). No diagnosis is made by this draft."
            )
            lines = ["No objects detected."]
        follow = ["Clinician to confirm the detected regions on the evidence frames."]
        if withheld:
            follow.insert(
                0,
                f"{withheld} frame(s) did not look like what the detection model knows; it made no "
                "statement about them. Review those frames without AI support.",
            )
        if meas.area_of(next(iter(labels), "")) is None and labels:
            follow.append("Measure the area with a calibrated method if size is clinically relevant.")
        infection = self._infection(meas)
        if not infection.startswith(_DECLINE):
            follow.append("Assess the listed infection-risk signals clinically.")
        if scores:
            unc = (
                f"Automatic detection with {_confidence_range(scores)} model confidence (a model's score, not a clinical "
                "probability); "
                "outlines and sizes are approximate and derived from the video frames only."
            )
        else:
            unc = "Automatic detection found nothing; small or occluded regions can be missed."
        return ReportDraft(
            findings=lines,
            measurements=meas.facts(),
            impression=impression,
            follow_up=" ".join(follow),
            uncertainty=unc,
            model_name=info.name,
            model_version=info.version,
            backend=info.backend,
            evidence_frames=list(context.evidence_frames),
        )


class GroundedBackend:
    """`VlmBackend` over `GroundedAnswerer`; streams the answer word by word."""

    def __init__(self, use_embeddings: bool = True) -> None:
        self._answerer = GroundedAnswerer(IntentMatcher(use_embeddings=use_embeddings))
        self._info = VlmInfo(name="grounded-findings", version=VERSION, backend="grounded")

    @property
    def info(self) -> VlmInfo:
        return self._info

    def warm_up(self) -> None:
        """Load the intent model now (blocking, seconds), so the first question is answered quickly."""
        self._answerer.matcher.method  # noqa: B018 - property access prepares the matcher

    @property
    def intent_method(self) -> str:
        """ "embeddings" or "keywords": which matcher is in use (for logs/docs)."""
        return self._answerer.matcher.method

    async def answer(self, request: AskRequest) -> AsyncGenerator[str, None]:
        # Intent matching runs a small model: keep it off the event loop.
        text = await asyncio.to_thread(self._answerer.answer, request)
        words = text.split(" ")
        for i, word in enumerate(words):
            yield word if i == len(words) - 1 else word + " "
            await asyncio.sleep(0)  # a cancellation point between words

    async def draft_report(self, context: ReportContext) -> ReportDraft:
        return self._answerer.draft(context, self._info)

    async def aclose(self) -> None:
        return None
