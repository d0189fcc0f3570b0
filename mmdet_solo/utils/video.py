"""Reading and writing videos with OpenCV (``cv2.VideoCapture`` / ``cv2.VideoWriter``).

The ``opencv-python-headless`` wheel writes MPEG-4 Part 2 (``mp4v``) into ``.mp4``/``.mov``/
``.m4v`` and Motion-JPEG into ``.avi``; it has no H.264 encoder (``avc1`` fails to open).
A video is written to a hidden partial file next to the output and moved over it at the end,
so an interrupted run leaves no truncated video under the final name.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Iterator, Optional, Tuple

import numpy as np

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.m4v', '.webm', '.mpg', '.mpeg', '.wmv')
# the codec written for each output extension (all available in opencv-python-headless)
FOURCC_BY_EXT = {'.mp4': 'mp4v', '.mov': 'mp4v', '.m4v': 'mp4v', '.avi': 'MJPG', '.mkv': 'XVID'}
DEFAULT_FPS = 25.0


def is_video(path: str) -> bool:
    return osp.splitext(path)[1].lower() in VIDEO_EXTENSIONS


class VideoSource:
    """Frames (BGR uint8) of a video file or a camera, with its fps, size and frame count
    (``None`` where the source does not know it, e.g. a camera)."""

    def __init__(self, source, what: str) -> None:
        import cv2
        self.cap = cv2.VideoCapture(source)
        if not self.cap.isOpened():
            raise OSError(f'{what}: OpenCV cannot open {source!r} (not a video, or no such '
                          'camera)')
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else None
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None
        self.size = (int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))  # (width, height)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            ok, frame = self.cap.read()
            if not ok:
                return
            yield frame

    def close(self) -> None:
        self.cap.release()


class VideoSink:
    """Writes BGR frames of ``size`` (width, height) at ``fps`` to ``path`` (codec by the
    extension, :data:`FOURCC_BY_EXT`); :meth:`close` moves the finished file into place,
    :meth:`abort` removes it."""

    def __init__(self, path: str, fps: float, size: Tuple[int, int]) -> None:
        import cv2
        ext = osp.splitext(path)[1].lower()
        if ext not in FOURCC_BY_EXT:
            raise ValueError(f'video output {path!r}: unsupported extension {ext!r} '
                             f"(expected one of {', '.join(FOURCC_BY_EXT)})")
        folder, name = osp.split(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self.path = path
        self.partial = osp.join(folder, f'.{osp.splitext(name)[0]}.{os.getpid()}.partial{ext}')
        self.size = tuple(size)
        self.frames = 0
        self.writer = cv2.VideoWriter(self.partial, cv2.VideoWriter_fourcc(*FOURCC_BY_EXT[ext]),
                                      float(fps), self.size)
        if not self.writer.isOpened():
            raise OSError(f'video output {path!r}: OpenCV cannot write {FOURCC_BY_EXT[ext]!r} '
                          f'video here; try an .avi output (Motion-JPEG)')

    def write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:
            raise ValueError(f'video output {self.path!r}: frame of {frame.shape[1]}x'
                             f'{frame.shape[0]}, expected {self.size[0]}x{self.size[1]}')
        self.writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        self.writer.release()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        self.writer.release()
        if osp.exists(self.partial):
            os.remove(self.partial)


def fps_or_default(fps: Optional[float]) -> float:
    return fps if fps else DEFAULT_FPS


__all__ = ['VIDEO_EXTENSIONS', 'FOURCC_BY_EXT', 'DEFAULT_FPS', 'is_video', 'VideoSource',
           'VideoSink', 'fps_or_default']
