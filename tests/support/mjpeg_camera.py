"""A network camera for tests: real JPEG frames over HTTP as an MJPEG stream.

OpenCV's FFmpeg backend reads ``multipart/x-mixed-replace`` streams, so the daemon opens
this exactly as it would an IP camera's ``http://.../video.mjpg``. ``online = False``
ends the current stream and refuses new connections (cable pulled); ``True`` serves again.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self


class MjpegCamera:
    def __init__(self, frames: list[Path], fps: float = 10.0) -> None:
        self.frames = [p.read_bytes() for p in frames]
        self.fps = fps
        self.online = True
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not camera.online:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while camera.online:
                        jpeg = camera.frames[i % len(camera.frames)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                        i += 1
                        time.sleep(1 / camera.fps)
                except OSError:
                    pass  # the reader went away

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/video.mjpg"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.online = False
        self._server.shutdown()
        self._server.server_close()
