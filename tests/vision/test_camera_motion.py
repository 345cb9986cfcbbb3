"""Camera motion on real frames: a still camera is still, a shifted frame is motion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.support.data import DATA
from vision.camera_motion import CameraMotionConfig, CameraMotionDetector
from vision.thumbnails import make_thumbnail

VIDEO = DATA / "videos" / "intel__bottle-detection.mp4"  # a camera on a tripod
pytestmark = pytest.mark.skipif(not VIDEO.is_file(), reason=f"no shared videos at {VIDEO.parent}")


def _frames(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(VIDEO))
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    return frames


def _shifted(frame: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(frame, m, (frame.shape[1], frame.shape[0]), borderMode=cv2.BORDER_REFLECT)


def _run(frames: list[np.ndarray], config: CameraMotionConfig | None = None):  # type: ignore[no-untyped-def]
    detector = CameraMotionDetector(config)
    return [detector.update(make_thumbnail(f).grey) for f in frames]


def test_a_still_camera_is_not_moving() -> None:
    results = _run(_frames(30))
    assert not any(r.moving for r in results)
    assert all(abs(r.shift[0]) < 0.005 and abs(r.shift[1]) < 0.005 for r in results)


def test_a_still_frame_with_sensor_noise_is_not_moving() -> None:
    frame = _frames(1)[0].astype(np.float32)
    rng = np.random.default_rng(1)
    noisy = [np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8) for _ in range(10)]
    assert not any(r.moving for r in _run(noisy))


def test_a_shifted_frame_is_camera_motion_and_it_settles() -> None:
    frame = _frames(1)[0]
    w = frame.shape[1]
    # Still, then a shake of 2 % of the width to the right and 1 % down, then still again.
    frames = [frame] * 3 + [_shifted(frame, 0.02 * w, 0.01 * w)] + [_shifted(frame, 0.02 * w, 0.01 * w)] * 10
    config = CameraMotionConfig(settle_frames=3)
    results = _run(frames, config)
    assert not any(r.moving for r in results[:3])
    shake = results[3]
    assert shake.moving and shake.frames_since_motion == 0
    assert shake.shift[0] == pytest.approx(0.02, abs=0.006)
    assert shake.shift[1] == pytest.approx(0.01 * w / frame.shape[0], abs=0.006)
    assert "camera moving" in shake.reason
    assert all(r.moving for r in results[4 : 4 + config.settle_frames])
    assert not any(r.moving for r in results[4 + config.settle_frames :])


def test_np_roll_of_a_real_frame_is_motion() -> None:
    frame = _frames(1)[0]
    results = _run([frame, np.roll(frame, 16, axis=1)])
    assert results[1].moving
    assert results[1].shift[0] > 0
