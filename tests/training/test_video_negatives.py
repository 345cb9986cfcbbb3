from pathlib import Path

import cv2
import pytest
import yaml

from firewatch.paths import data_root
from training.detector import data_yaml
from training.smoke_mask import DATA_KEY
from training.video_negatives import extract, fire_free_clips

VIDEOS = data_root() / "videos"
pytestmark = pytest.mark.skipif(not (VIDEOS / "labels.csv").exists(), reason="needs the shared videos")


def test_frames_of_a_fire_free_clip_become_background_images(tmp_path: Path) -> None:
    clip = "intel__bottle-detection.mp4"
    done = extract(VIDEOS, tmp_path / "neg", clips=(clip,), every=100)
    frames = sorted((tmp_path / "neg" / "images" / "train").glob("*.jpg"))
    assert done.frames == len(frames) == 4  # 399 frames, one in a hundred
    image = cv2.imread(str(frames[0]))
    assert image is not None and image.shape[:2] == (360, 640)
    assert not (tmp_path / "neg" / "labels").exists()  # no label file: background to ultralytics
    again = extract(VIDEOS, tmp_path / "neg", clips=(clip,), every=100)
    assert again.frames == 4 and len(list((tmp_path / "neg" / "images" / "train").glob("*.jpg"))) == 4


def test_only_fire_free_clips_are_accepted(tmp_path: Path) -> None:
    assert "navid__fire1.mp4" not in fire_free_clips(VIDEOS)
    with pytest.raises(ValueError, match="navid__fire1.mp4"):
        extract(VIDEOS, tmp_path, clips=("navid__fire1.mp4",))


def test_negatives_join_the_train_list_but_not_the_smoke_mask(tmp_path: Path) -> None:
    fire, extra, neg = data_root() / "fire", data_root() / "fire-extra", tmp_path / "neg"
    spec = yaml.safe_load(data_yaml(fire, tmp_path / "runs", fire_only=[extra], negatives=[neg]).read_text())
    assert spec["train"][-1] == str(neg.resolve() / "images" / "train")
    assert spec[DATA_KEY] == [str(extra.resolve() / "images" / "train")]
    assert spec["val"] == str(fire.resolve() / "images" / "val")
    plain = yaml.safe_load(data_yaml(fire, tmp_path / "runs").read_text())
    assert DATA_KEY not in plain and isinstance(plain["train"], str)
