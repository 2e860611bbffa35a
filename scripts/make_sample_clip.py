"""Build the bundled demo camera clip from CVC-ClinicDB validation sequences.

The clip is the default source of `scopecast serve`. It uses only sequences that
the polyp model's split holds out for validation, so the demo never shows the
model frames it was trained on. Consecutive frames are cross-faded so the
25 fps stream moves smoothly although the dataset's frame rate is low.

    python scripts/make_sample_clip.py [--data ../shared/data] [--out scopecast/assets/colonoscopy-sample.mp4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np

from perception.datasets import CVC_SEQUENCE_STARTS, cvc_val_sequences

SIZE = (768, 576)  # 2x the native 384x288, a common SD endoscope size
FPS = 25
STEPS_PER_FRAME = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("scopecast/assets/colonoscopy-sample.mp4"))
    args = parser.parse_args()
    bounds = list(CVC_SEQUENCE_STARTS) + [479]
    container = av.open(str(args.out), "w")
    stream = container.add_stream("libx264", rate=FPS, options={"crf": "26", "preset": "slow"})
    stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
    sequences = cvc_val_sequences()
    for seq in sequences:
        names = [f"{n:03d}.jpg" for n in range(bounds[seq - 1], bounds[seq])]
        frames = [
            cv2.resize(cv2.imread(str(args.data / "cvc-clinicdb" / "images" / n)), SIZE, interpolation=cv2.INTER_CUBIC)
            for n in names
        ]
        for a, b in zip(frames, frames[1:] + frames[-1:]):
            for step in range(STEPS_PER_FRAME):
                t = step / STEPS_PER_FRAME
                mixed = cv2.addWeighted(a, 1 - t, b, t, 0)
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(mixed), format="bgr24")):
                    container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) from CVC-ClinicDB sequences {sequences}")


if __name__ == "__main__":
    main()
