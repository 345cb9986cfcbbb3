"""A fake camera device (what ``cv2.VideoCapture`` would be) for the source and health tests:
no camera can be attached here, so refusals and dropped streams are scripted."""

from __future__ import annotations

import time

import numpy as np


class FlakyCamera:
    """A fake camera device: fails to open ``fail_opens`` times, then delivers ``frames``
    real images per connection before its stream drops."""

    def __init__(self, images: list[np.ndarray], fail_opens: int, frames_per_connection: int):
        self.images = images
        self.fail_opens = fail_opens
        self.frames_per_connection = frames_per_connection
        self.opens = 0
        self.delivered = 0

    def open(self):
        self.opens += 1
        if self.opens <= self.fail_opens:
            raise OSError("connection refused")
        return _Connection(self)


class _Connection:
    def __init__(self, camera: FlakyCamera):
        self.camera = camera
        self.left = camera.frames_per_connection

    def isOpened(self):  # noqa: N802
        return True

    def read(self):
        if self.left == 0:
            return False, None
        self.left -= 1
        image = self.camera.images[self.camera.delivered % len(self.camera.images)]
        self.camera.delivered += 1
        return True, image.copy()

    def grab(self):
        return True

    def get(self, prop):
        return 0.0

    def release(self):
        pass


class FastCamera(FlakyCamera):
    """Delivers a frame every ``period`` seconds, like a 100 FPS camera."""

    def __init__(self, images, period: float, **kw):
        super().__init__(images, **kw)
        self.period = period

    def open(self):
        connection = super().open()
        read = connection.read

        def paced_read():
            time.sleep(self.period)
            return read()

        connection.read = paced_read
        return connection
