"""OpenCV's own console logging.

Its video backends print several lines of V4L2/FFmpeg warnings on every failed open (no
camera at an index, a stream that is down), once per reconnect attempt, which buries the
one line firewatch says about the same failure. Only its log level API stops them:
``OPENCV_FFMPEG_LOGLEVEL`` alone leaves the V4L2 and "raised OpenCV exception" lines.
"""

from __future__ import annotations


def quiet_opencv(debug: bool = False) -> None:
    """Silence OpenCV's logging, or let it through at debug level when firewatch debugs."""
    import cv2

    levels = cv2.utils.logging
    levels.setLogLevel(levels.LOG_LEVEL_DEBUG if debug else levels.LOG_LEVEL_SILENT)
