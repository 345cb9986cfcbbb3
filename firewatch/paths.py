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
# The datasets sit beside the checkout, never inside it (see README).
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"


def data_root() -> Path:
    """The shared datasets (``fire/``, ``fire-photos/``, ``faces/``): ``$FIREWATCH_DATA``, else
    ``shared/data`` beside the checkout."""
    return Path(os.environ.get("FIREWATCH_DATA") or DEFAULT_DATA_ROOT)
