"""firewatch vision: camera frames in, typed fire and health events out.

Knows nothing of Telegram or the database. Data flows one way, one module per stage:

- ``sources``  — camera index, RTSP/HTTP URL, video file or image folder -> ``Frame``s;
  ``read_frames`` reopens a failing live source with exponential backoff.
- ``health``   — per-camera state machine: lost / back / frozen (identical frames for N s) /
  black (dark, flat frames for N s) -> ``HealthEvent``s on changes only.
- ``detectors`` — the staged interface (prepare -> infer -> decode), the YOLO format
  (letterbox, decoding, class names and input size from the model metadata) and runtimes
  chosen by name (onnxruntime: TensorRT -> CUDA -> CPU) -> ``Detections``.
- ``geometry`` — IoU and NMS, shared by decoding, the event rules and evaluation.
- ``tracker``  — ByteTrack (Roboflow's ``trackers``, numpy only) gives each detection a
  stable ``track_id``.
- ``events``   — per track: confirmed in K of the last N frames -> ``started``; grew or got
  more severe -> ``updated``; gone for M s (or source ended) -> ``cleared``. Severity from
  an optional crop classifier, else from box size and growth. -> ``FireEvent``s.
- ``annotate`` — boxes, track ids, severity and a caption bar; snapshot JPEG naming.
- ``pipeline`` — wires the stages for one camera; runs in a worker thread for the daemon
  (start/stop, status, on-demand annotated snapshot) or in the caller's thread.
- ``replay``   — the offline command's engine: a file/folder/stream -> events JSONL,
  snapshots, annotated video.

Typed values live in ``types``; every event has ``to_dict()`` / ``to_json()``.
"""

from vision.types import Detections, FireEvent, Frame, HealthEvent

__all__ = ["Detections", "FireEvent", "Frame", "HealthEvent"]
