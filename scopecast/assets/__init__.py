"""Files shipped with the package (see SOURCES.md beside this file for provenance and licences)."""

from pathlib import Path

ASSETS_DIR = Path(__file__).parent
SAMPLE_CLIP = ASSETS_DIR / "colonoscopy-sample.mp4"
LAPAROSCOPY_CLIP = ASSETS_DIR / "laparoscopy-rvimlab-720p25.mp4"
