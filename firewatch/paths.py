"""Where firewatch finds files it does not own: the shipped models and the shared datasets.

The one place that resolves ``FIREWATCH_DATA`` and the repository's ``models/`` folder;
vision/ and storage/ are handed paths and know neither.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
SHIPPED_DETECTOR = MODELS_DIR / "fire-detector.onnx"
SHIPPED_CLASSIFIER = MODELS_DIR / "fire-classifier.onnx"
SHIPPED_VERIFICATION = MODELS_DIR / "verification.json"
# Each shipped detector with the temporal verification fitted on its own tracks (the features
# are measured inside its boxes, so a verifier fitted on another detector's boxes misjudges).
# The default is the first; FIREWATCH_DETECTOR_MODEL takes a name here or a path.
SHIPPED_DETECTORS: dict[str, tuple[Path, Path]] = {
    "v2": (SHIPPED_DETECTOR, SHIPPED_VERIFICATION),
    "v1": (MODELS_DIR / "fire-detector-v1.onnx", MODELS_DIR / "verification-v1.json"),
}
# Each shipped classifier; the default is the first. FIREWATCH_CLASSIFIER_MODEL takes a name
# here, a path, or "off".
SHIPPED_CLASSIFIERS: dict[str, Path] = {
    "v2": SHIPPED_CLASSIFIER,
    "v1": MODELS_DIR / "fire-classifier-v1.onnx",
}
# The datasets sit beside the checkout, never inside it (see README).
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"


def data_root() -> Path:
    """The shared datasets (``fire/``, ``fire-photos/``, ``faces/``): ``$FIREWATCH_DATA``, else
    ``shared/data`` beside the checkout."""
    return Path(os.environ.get("FIREWATCH_DATA") or DEFAULT_DATA_ROOT)
