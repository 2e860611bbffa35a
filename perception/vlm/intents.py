"""Which kind of question is this? Maps free text to a small set of intents
the grounded answerer can answer from detections alone.

Primary matcher: nearest example sentence by MiniLM embedding (handles
paraphrases: "what's the extent of the wound" ≈ "how large is the wound").
Fallback: keyword rules, used when the embedding model is not installed and
as a tie-breaker for the few words that carry the whole meaning ("how many").
Questions about diagnosis, treatment or identity are refused by keyword
*before* embedding: refusing must not depend on a similarity score.
"""

from __future__ import annotations

import re
import threading
from enum import Enum

import numpy as np

from perception.vlm.embeddings import SentenceEmbedder, get_embedder


class Intent(str, Enum):
    DESCRIBE = "describe"
    COUNT = "count"
    LOCATION = "location"
    SIZE = "size"
    CONFIDENCE = "confidence"
    PRESENCE = "presence"
    PROXIMITY = "proximity"
    TISSUE = "tissue"
    INFECTION = "infection"
    UNSUPPORTED = "unsupported"


EXAMPLES: dict[Intent, tuple[str, ...]] = {
    Intent.DESCRIBE: (
        "describe this frame",
        "what is detected",
        "what do you see",
        "what is in the image",
        "what is on screen",
        "summarize the findings",
        "what did the model find",
        "what did you find",
        "tell me about this image",
    ),
    Intent.COUNT: ("how many objects are there", "how many polyps", "count the wounds", "number of detections"),
    Intent.LOCATION: (
        "where is the wound",
        "where is it",
        "which region of the image is the polyp in",
        "what part of the frame",
        "locate the instrument",
        "is it on the left or right",
        "position of the lesion",
    ),
    Intent.SIZE: (
        "how large is the wound",
        "how big is it",
        "what is the size of the polyp",
        "what is the area",
        "is the wound larger than 10% of the image",
        "how much of the frame does it cover",
        "extent of the wound",
    ),
    Intent.CONFIDENCE: (
        "how confident are you",
        "how sure is the model",
        "what is the confidence score",
        "how reliable is the detection",
        "probability of the detection",
        "how confident is the model about the wound",
        "how certain is the detection of the polyp",
    ),
    Intent.PRESENCE: (
        "is there a wound",
        "is there a polyp",
        "do you see an instrument",
        "is a polyp visible",
        "any bleeding",
        "are there any detections",
    ),
    Intent.PROXIMITY: (
        "is the instrument near the marked region",
        "how far is the tool from the wound",
        "is the instrument close to the polyp",
        "distance between the instrument and the lesion",
        "are they touching",
    ),
    Intent.TISSUE: (
        "what is the tissue mix",
        "tissue composition of the wound",
        "how much granulation tissue",
        "how much slough or necrosis",
        "what kind of tissue is in the wound bed",
    ),
    Intent.INFECTION: (
        "is there a risk of infection",
        "any signs of infection",
        "does it look infected",
        "infection risk signals",
    ),
    Intent.UNSUPPORTED: (
        "what is the diagnosis",
        "is this cancer",
        "what treatment should I give",
        "what medication should be prescribed",
        "who is the patient",
        "what is the patient's name",
        "what is the prognosis",
        "what will the weather be tomorrow",
        "write me a poem",
    ),
}

# Refused outright: the grounded answerer cannot (and a drafting assistant must
# not) diagnose, recommend treatment or identify people.
_REFUSE = re.compile(
    r"\b(diagnos\w*|cancer\w*|malignan\w*|benign|carcinom\w*|tumou?r\w*|prognos\w*|treat\w*|therap\w*|prescri\w*|"
    r"medicat\w*|drug\w*|antibiotic\w*|dose|dosage|surgery should|should i (?:cut|operate|remove)|"
    r"who is|whose|patient'?s? (?:name|identity|age|id)|name of the patient|identify the patient)\b",
    re.IGNORECASE,
)

_KEYWORDS: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    (Intent.COUNT, re.compile(r"\bhow many\b|\bcount\b|\bnumber of\b", re.I)),
    (
        Intent.PROXIMITY,
        re.compile(r"\bnear\b|\bclose to\b|\bfar\b|\bdistance\b|\btouch\w*|\bnext to\b|\badjacent\b", re.I),
    ),
    (Intent.INFECTION, re.compile(r"\binfect\w*|\bsepsis\b|\bpus\b|\berythema\b", re.I)),
    (Intent.TISSUE, re.compile(r"\btissue\b|\bgranulation\b|\bslough\b|\bnecro\w*|\beschar\b", re.I)),
    (Intent.CONFIDENCE, re.compile(r"\bconfiden\w*|\bsure\b|\bcertain\w*|\breliab\w*|\bprobab\w*|\bscore\b", re.I)),
    (Intent.SIZE, re.compile(r"\bsize\b|\blarge\w*|\bbig\w*|\bsmall\w*|\barea\b|\bextent\b|\bcover\w*|\bcm\b|%", re.I)),
    (
        Intent.LOCATION,
        re.compile(
            r"\bwhere\b|\bregion\b|\bposition\b|\blocat\w*|\bwhich (?:part|side|quadrant)\b|\bleft or right\b", re.I
        ),
    ),
    (
        Intent.PRESENCE,
        re.compile(r"^\s*(?:is|are) there\b|\b(?:do|can) you see\b|\bvisible\b|\bany\b|\bpresent\b", re.I),
    ),
    (
        Intent.DESCRIBE,
        re.compile(
            r"\bdescribe\b|\bwhat (?:is|do you|did|can you) (?:detected|see|in|on|find|found)|\bsummar\w*|\bwhat'?s (?:in|on)\b|\bdetect\w*|\bfind\b|\bfound\b",
            re.I,
        ),
    ),
)

# Below this cosine similarity to every example the question is treated as out
# of scope; chosen on the examples above (paraphrases score > 0.5, unrelated < 0.3).
MIN_SIMILARITY = 0.42


def keyword_intent(question: str) -> Intent:
    """Intent by keyword rules (no model); UNSUPPORTED when nothing matches."""
    if _REFUSE.search(question):
        return Intent.UNSUPPORTED
    for intent, pattern in _KEYWORDS:
        if pattern.search(question):
            return intent
    return Intent.UNSUPPORTED


class IntentMatcher:
    """Question → Intent; embeddings when available, keywords otherwise."""

    def __init__(self, use_embeddings: bool = True) -> None:
        self._use_embeddings = use_embeddings
        self._embedder: SentenceEmbedder | None = None
        self._matrix: np.ndarray | None = None
        self._labels: list[Intent] = []
        self._lock = threading.Lock()
        self._ready = False

    def _prepare(self) -> None:
        with self._lock:
            if self._ready:
                return
            if self._use_embeddings:
                self._embedder = get_embedder()
            if self._embedder is not None:
                texts = [t for intent in EXAMPLES for t in EXAMPLES[intent]]
                self._labels = [intent for intent in EXAMPLES for _ in EXAMPLES[intent]]
                self._matrix = self._embedder.encode(texts)
            self._ready = True

    @property
    def method(self) -> str:
        self._prepare()
        return "embeddings" if self._embedder is not None else "keywords"

    def match(self, question: str) -> Intent:
        """Blocking (runs a small model); call from a worker thread in async code."""
        if _REFUSE.search(question):
            return Intent.UNSUPPORTED
        self._prepare()
        if self._embedder is None or self._matrix is None:
            return keyword_intent(question)
        vec = self._embedder.encode([question])[0]
        sims = self._matrix @ vec
        best = int(np.argmax(sims))
        intent = self._labels[best]
        if sims[best] < MIN_SIMILARITY:
            # Low similarity: trust explicit keywords if any, else out of scope.
            return keyword_intent(question)
        # A few words decide the intent regardless of phrasing ("how many" is
        # always a count, "confident" always about scores; an explicit "N%"
        # threshold is always a size question): the embedding is for paraphrases
        # that carry none of these words.
        kw = keyword_intent(question)
        if kw in (Intent.COUNT, Intent.PROXIMITY, Intent.CONFIDENCE, Intent.TISSUE, Intent.INFECTION) and intent != kw:
            return kw
        if re.search(r"\d\s*%", question):
            return Intent.SIZE
        return intent
