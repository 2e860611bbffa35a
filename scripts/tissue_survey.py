"""Tissue-mix rules on real wound photos with ground-truth masks, colours taken as they are (no marker to calibrate).

    .venv/bin/python scripts/tissue_survey.py [--data ../shared/data/fuseg/train] [--every 8] [--panel out.png NAME...]

Prints the mean mix and how often each class dominates, so a change to the rules or the calibration can be judged on
real photos; `--panel` writes photo | classification crops (red granulation, yellow slough, black necrotic) to look at.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from telehealth.wound.colour import rgb_to_lab
from telehealth.wound.tissue import TissueRules, classify_pixels, tissue_composition

CLASS_BGR = np.array([[40, 40, 220], [60, 220, 240], [30, 30, 30], [200, 200, 200]], np.uint8)


def photos(root: Path, every: int) -> list[tuple[Path, np.ndarray]]:
    out = []
    for path in sorted((root / "images").glob("*.jpg"))[::every]:
        mask = cv2.imread(str(root / "masks" / f"{path.stem}.png"), cv2.IMREAD_GRAYSCALE)
        if mask is not None and (mask > 127).sum() >= 200:
            out.append((path, mask > 127))
    return out


def survey(root: Path, every: int) -> None:
    rows = []
    for path, mask in photos(root, every):
        rgb = np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])
        t = tissue_composition(rgb, mask)
        assert t is not None
        rows.append((t.granulation, t.slough, t.necrotic, t.unclassified))
    mix = np.asarray(rows)
    print(f"{len(mix)} photos from {root}")
    print("mean mix: granulation {:.2f}, slough {:.2f}, necrotic {:.2f}, unclassified {:.2f}".format(*mix.mean(0)))
    print(
        f"photos with granulation >= 95 %: {(mix[:, 0] >= 0.95).mean():.0%}; slough > 5 %: "
        f"{(mix[:, 1] > 0.05).mean():.0%}; necrotic > 5 %: {(mix[:, 2] > 0.05).mean():.0%}"
    )


def panel(root: Path, names: list[str], out: Path) -> None:
    rows = []
    for name in names:
        bgr = cv2.imread(str(root / "images" / name))
        mask = cv2.imread(str(root / "masks" / f"{Path(name).stem}.png"), cv2.IMREAD_GRAYSCALE) > 127
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = max(ys.min() - 20, 0), ys.max() + 20, max(xs.min() - 20, 0), xs.max() + 20
        classes = classify_pixels(rgb_to_lab(bgr[..., ::-1][mask][:, None, :]).reshape(-1, 3), TissueRules())
        shown = bgr.copy()
        shown[mask] = CLASS_BGR[classes]
        crop = cv2.resize(bgr[y0:y1, x0:x1], (240, 240))
        cv2.putText(crop, name, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        rows.append(np.hstack([crop, cv2.resize(shown[y0:y1, x0:x1], (240, 240), interpolation=cv2.INTER_NEAREST)]))
    cv2.imwrite(str(out), np.vstack(rows))
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/fuseg/train")
    parser.add_argument("--every", type=int, default=8, help="take every Nth photo")
    parser.add_argument("--panel", type=Path, help="write a picture of the named photos' classification here")
    parser.add_argument("names", nargs="*", help="photo file names for --panel, e.g. 0011.jpg 0127.jpg")
    args = parser.parse_args()
    if args.panel:
        panel(args.data, args.names, args.panel)
    else:
        survey(args.data, args.every)


if __name__ == "__main__":
    main()
