"""Ignore zones: the geometry, the drop rule, the run-time swap, and a real fire dropped
inside a zone while another fire in the same frames still alerts."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.support.data import DATA, SHIPPED_DETECTOR
from vision.types import Detections
from vision.zones import Zone, ZoneSet, box_zone, drop_ignored, inside_fraction

FIRE4 = DATA / "videos" / "navid__fire4.mp4"
LEFT_HALF = Zone("left", ((0, 0), (0.5, 0), (0.5, 1), (0, 1)))


def test_inside_fraction_of_boxes_against_a_square_and_a_triangle() -> None:
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32)
    assert inside_fraction((2, 2, 8, 8), square) == pytest.approx(1.0)
    assert inside_fraction((5, 0, 15, 10), square) == pytest.approx(0.5)
    assert inside_fraction((20, 20, 30, 30), square) == 0.0
    triangle = np.array([[0, 0], [10, 0], [0, 10]], np.float32)  # the lower-left half of the square
    assert inside_fraction((0, 0, 10, 10), triangle) == pytest.approx(0.5)
    assert inside_fraction((0, 0, 2, 2), triangle) == pytest.approx(1.0)


def test_a_detection_mostly_inside_is_dropped_and_one_mostly_outside_kept() -> None:
    boxes = Detections(np.array([[10, 10, 100, 100],     # wholly in the left half
                                 [280, 10, 400, 100],    # a third inside: kept
                                 [250, 10, 350, 100]]),  # half inside: dropped
                       [0.9, 0.8, 0.7], [0, 0, 0])
    kept = drop_ignored(boxes, [LEFT_HALF], (600, 400))
    assert kept.xyxy.tolist() == [[280, 10, 400, 100]]
    assert kept.confidence.tolist() == pytest.approx([0.8])
    assert drop_ignored(boxes, [], (600, 400)) is boxes


def test_box_zone_is_padded_and_clipped_to_the_frame() -> None:
    zone = box_zone("alert 3", (0.0, 0.2, 0.5, 0.6), padding=0.1, id=3)
    xs, ys = zip(*zone.points)
    assert (min(xs), max(xs)) == pytest.approx((0.0, 0.55))
    assert (min(ys), max(ys)) == pytest.approx((0.16, 0.64))
    assert zone.id == 3


def test_zones_outside_the_frame_or_with_two_points_are_refused() -> None:
    with pytest.raises(ValueError, match="outside 0-1"):
        Zone("bad", ((0, 0), (1.5, 0), (1, 1)))
    with pytest.raises(ValueError, match="3 points"):
        Zone("line", ((0, 0), (1, 1)))


def test_added_zones_are_swapped_whole_while_a_reader_applies_them() -> None:
    zones = ZoneSet([LEFT_HALF])
    box = Detections(np.array([[400, 10, 500, 100]]), [0.9], [0])
    right = Zone("right", ((0.5, 0), (1, 0), (1, 1), (0.5, 1)), id=7)
    seen: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(len(zones.apply(box, (600, 400))))

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(200):
        zones.set_added([right])
        zones.set_added([])
    stop.set()
    thread.join()
    assert set(seen) <= {0, 1}
    zones.set_added([right])
    assert zones.added == (right,) and zones.zones == (LEFT_HALF, right)
    assert len(zones.apply(box, (600, 400))) == 0


@pytest.mark.skipif(not FIRE4.is_file(), reason=f"shared data missing at {DATA}")
def test_a_real_fire_inside_a_zone_is_dropped_and_outside_one_still_alerts() -> None:
    """A real fireplace clip: a zone over the fireplace silences it, a zone beside it does not."""
    from vision.detectors import Detector
    from vision.pipeline import Pipeline
    from vision.sinks import CallbackSink
    from vision.sources import open_source
    from vision.types import FireEvent

    detector = Detector(SHIPPED_DETECTOR, threads=1)

    def started(zones: ZoneSet) -> list[FireEvent]:
        events: list = []
        Pipeline(open_source(FIRE4, fps=5), detector, camera="lounge", zones=zones,
                 sinks=[CallbackSink(events.append)]).run()
        return [e for e in events if isinstance(e, FireEvent) and e.kind == "started"]

    fireplace = Zone("fireplace", ((0.05, 0.0), (0.95, 0.0), (0.95, 1.0), (0.05, 1.0)))
    corner = Zone("corner", ((0.0, 0.0), (0.1, 0.0), (0.1, 0.1), (0.0, 0.1)))
    assert started(ZoneSet([fireplace])) == []
    beside = started(ZoneSet([corner]))
    assert beside and beside[0].frame_size == (640, 360)
