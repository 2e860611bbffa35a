"""The clocks media timestamps count in, defined once for every track that stamps frames.

WebRTC fixes these rates, not us: RTP carries video timestamps at 90 kHz and
Opus audio at 48 kHz, and aiortc's encoders expect `pts` in those units.
"""

from __future__ import annotations

import fractions

VIDEO_CLOCK_HZ = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_HZ)

AUDIO_CLOCK_HZ = 48_000  # also the only rate aiortc's Opus decoder produces and its encoder accepts
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_CLOCK_HZ)
OPUS_FRAME_SAMPLES = AUDIO_CLOCK_HZ * 20 // 1000  # 20 ms: the frame aiortc's Opus encoder sends
