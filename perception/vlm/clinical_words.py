"""Findings in the words a clinician writes: a short stable name, size as a share of the frame, place, and
confidence in words. One module, so the overlay tag, the monitor's panel and the grounded answers say the same."""

from __future__ import annotations

from perception.findings import Finding, FrameFindings
from perception.vlm.geometry import area_fraction, percent, region_words

_COUNT_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def finding_name(finding: Finding) -> str:
    """'polyp 3': the label and its track number, as drawn on the video; the label alone when untracked."""
    return finding.label if finding.track_id is None else f"{finding.label} {finding.track_id}"


def confidence_word(score: float) -> str:
    """The model's score in words (not a clinical probability)."""
    return "high" if score >= 0.8 else "moderate" if score >= 0.5 else "low"


def count_words(n: int, label: str) -> str:
    noun = label if n == 1 else label + ("es" if label.endswith(("s", "x", "ch", "sh")) else "s")
    return f"{_COUNT_WORDS[n] if n < len(_COUNT_WORDS) else n} {noun}"


def where_words(finding: Finding, frames: FrameFindings) -> str:
    return region_words(finding.box, frames.frame_size)


def clinical_summary(frames: FrameFindings) -> str:
    """E.g. 'Two polyps: the larger, about 12% of the frame, lower left; model confidence high. The other, about
    0.7% of the frame, upper right; confidence moderate.'"""
    objects = sorted(frames.objects, key=lambda f: area_fraction(f, frames.frame_size), reverse=True)
    if not objects:
        return f"Nothing detected by the {frames.model.name} model in this frame."
    labels = {f.label for f in objects}
    label = objects[0].label if len(labels) == 1 else "finding"
    head = count_words(len(objects), label)
    head = head[0].upper() + head[1:]

    def facts(f: Finding) -> str:
        # The name as drawn on the video ('polyp 3'), so a clinician can match words to outlines.
        name = "" if len(labels) == 1 and f.track_id is None else f"{finding_name(f)}, "
        return f"{name}about {percent(area_fraction(f, frames.frame_size))} of the frame, {where_words(f, frames)}"

    first = objects[0]
    if len(objects) == 1:
        return f"{head}, {facts(first)}; model confidence {confidence_word(first.score)}."
    text = f"{head}: the larger, {facts(first)}; model confidence {confidence_word(first.score)}."
    for i, other in enumerate(objects[1:], 1):
        lead = "The other" if len(objects) == 2 else ("The next" if i == 1 else "Then")
        text += f" {lead}, {facts(other)}; confidence {confidence_word(other.score)}."
    return text


def finding_sentence(finding: Finding, frame: FrameFindings) -> str:
    """One finding as a report states it: what, where and how large, with the model's confidence in words; no pixel
    coordinates or raw scores (those are facts for a model's prompt, not for the record a clinician signs)."""
    share = area_fraction(finding, frame.frame_size)
    article = "An" if finding.label[:1].lower() in "aeiou" else "A"
    return (
        f"{article} {finding.label} was found in the {region_words(finding.box, frame.frame_size)} of the image, "
        f"covering about {percent(share)} of it; the detection model's confidence is {confidence_word(finding.score)}."
    )
