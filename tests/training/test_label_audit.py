"""The label audit on real pictures: sheets of the flagged fire-free images, verdicts back, a corrected copy."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import pytest

from tests.support.data import FIRE, SHIPPED_DETECTOR
from training.label_audit import apply, read_verdicts, write_sheets

pytestmark = pytest.mark.skipif(not (FIRE / "manifest.csv").exists(), reason="no shared data")

FIREPLACE = "cairneg__fire-featured.jpg"  # a lit fireplace in a photo filed as fire-free
SUNSET = "cairneg__images.jpg"  # a sunset over the sea
CONF = 0.15


def _fire_image() -> str:
    return next(p.name for p in sorted((FIRE / "labels" / "val").glob("ig__*.txt"))
                if p.read_text().startswith("0 ")).replace(".txt", ".jpg")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A YOLO folder with the same five val pictures as its train and val split."""
    names = [FIREPLACE, SUNSET, _fire_image()]
    names += [n for n in sorted(p.name for p in (FIRE / "images" / "val").glob("cairneg__*.jpg"))
              if n not in names][:2]
    root = tmp_path / "tiny"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for name in names:
            (root / "images" / split / name).symlink_to((FIRE / "images" / "val" / name).resolve())
            label = FIRE / "labels" / "val" / name.replace(".jpg", ".txt")
            (root / "labels" / split / label.name).write_text(label.read_text() if label.exists() else "")
    rows = [r for r in csv.DictReader((FIRE / "manifest.csv").open()) if r["file"] in {f"val/{n}" for n in names}]
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, rows[0].keys())
        writer.writeheader()
        for split in ("train", "val"):
            writer.writerows({**r, "split": split, "file": r["file"].replace("val/", f"{split}/")} for r in rows)
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: fire\n  1: smoke\n")
    return root


def _fill(audit: Path, verdicts: dict[str, str]) -> None:
    rows = list(csv.DictReader(audit.open()))
    for row in rows:
        row["verdict"] = verdicts[row["image"]]
    with audit.open("w", newline="") as f:
        writer = csv.DictWriter(f, rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)


def test_sheets_list_only_the_flagged_fire_free_pictures(tiny: Path, tmp_path: Path) -> None:
    audit = write_sheets(tiny, SHIPPED_DETECTOR, "val", CONF, tmp_path / "audit")
    rows = list(csv.DictReader(audit.open()))
    flagged = {row["image"] for row in rows}
    assert {FIREPLACE, SUNSET} <= flagged and _fire_image() not in flagged
    assert all(row["verdict"] == "" for row in rows)
    for row in rows:
        scores = [float(s) for s in row["scores"].split()]
        assert scores == sorted(scores, reverse=True) and scores[0] >= CONF
        assert len(row["boxes"].split()) == len(scores)
    sheet = cv2.imread(str(tmp_path / "audit" / "sheet-01.png"))
    assert sheet is not None and sheet.shape[1] == 5 * 480


def test_apply_leaves_out_the_flames_and_links_the_real_false_alarms(tiny: Path, tmp_path: Path) -> None:
    audits = []
    for split in ("train", "val"):
        audit = write_sheets(tiny, SHIPPED_DETECTOR, split, CONF, tmp_path / split)
        _fill(audit, {name: ("fire" if name == FIREPLACE else "no") for name in
                      (row["image"] for row in csv.DictReader(audit.open()))})
        audits.append(audit)
    out, negatives = tmp_path / "audited", tmp_path / "negatives"
    applied = apply(tiny, read_verdicts(audits), out, negatives, repeats=2)

    assert applied.left_out == {"train": 1, "val": 1}
    for split in ("train", "val"):
        kept = {p.name for p in (out / "images" / split).iterdir()}
        assert FIREPLACE not in kept and SUNSET in kept and len(kept) == 4
        assert {p.stem for p in (out / "labels" / split).iterdir()} == {Path(n).stem for n in kept}
    manifest = [r["file"] for r in csv.DictReader((out / "manifest.csv").open())]
    assert "val/" + FIREPLACE not in manifest and "val/" + SUNSET in manifest
    fire = _fire_image()
    assert (out / "labels" / "val" / fire.replace(".jpg", ".txt")).read_text().split() == \
        (FIRE / "labels" / "val" / fire.replace(".jpg", ".txt")).read_text().split()

    linked = sorted((negatives / "images" / "train").iterdir())
    assert applied.negatives == len(linked) // 2 >= 1
    assert SUNSET in {p.resolve().name for p in linked} and FIREPLACE not in {p.resolve().name for p in linked}
    assert all(p.is_symlink() for p in (out / "images" / "train").iterdir())

    _fill(audits[1], {name: "no" for name in (row["image"] for row in csv.DictReader(audits[1].open()))})
    again = apply(tiny, read_verdicts(audits), out, negatives, repeats=2)
    assert again.left_out == {"train": 1, "val": 0} and FIREPLACE in {p.name for p in (out / "images" / "val").iterdir()}


def test_a_row_without_a_verdict_is_refused_with_its_line(tiny: Path, tmp_path: Path) -> None:
    audit = write_sheets(tiny, SHIPPED_DETECTOR, "val", CONF, tmp_path / "audit")
    with pytest.raises(ValueError, match=r"audit.csv:2: verdict must be 'fire' or 'no'"):
        read_verdicts([audit])
