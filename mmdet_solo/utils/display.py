"""Showing drawn images in a window (``--show``), where a window can open.

OpenCV's own windows need an OpenCV built with a GUI; the ``opencv-python-headless`` wheel
(what mmdet_solo installs) has none, so matplotlib shows the image instead when it has an
interactive backend (Tk, Qt, GTK, wx or macOS). :func:`open_window` says which one works here,
or why none does, before a long run starts.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Optional, Tuple

import numpy as np

# matplotlib backends that can open a window, in the order tried
GUI_BACKENDS = ('MacOSX', 'QtAgg', 'TkAgg', 'GTK4Agg', 'GTK3Agg', 'WXAgg')
NON_INTERACTIVE_BACKENDS = ('agg', 'cairo', 'pdf', 'pgf', 'ps', 'svg', 'template')


def display_missing() -> Optional[str]:
    """Why no window can open on this machine (no X11/Wayland display), else ``None``."""
    if sys.platform in ('win32', 'darwin'):
        return None
    if os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'):
        return None
    return 'there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)'


def opencv_has_gui() -> bool:
    """Whether this OpenCV build can open windows (``opencv-python-headless`` cannot)."""
    import cv2
    found = re.search(r'^\s*GUI:\s*(\S+)', cv2.getBuildInformation(), re.MULTILINE)
    return bool(found) and found.group(1).upper() != 'NONE'


def matplotlib_gui_backend() -> Optional[str]:
    """An interactive matplotlib backend that loads here (switching to it), else ``None``."""
    try:
        import matplotlib
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    current = matplotlib.get_backend()
    if current.lower() not in NON_INTERACTIVE_BACKENDS and not current.startswith('module://'):
        return current
    for name in GUI_BACKENDS:
        try:
            plt.switch_backend(name)
            return name
        except (ImportError, ValueError, RuntimeError):
            continue
    plt.switch_backend(current)
    return None


class ImageWindow:
    """Shows BGR images one at a time and waits: a key press in an OpenCV window, closing the
    figure with matplotlib."""

    def __init__(self, backend: str) -> None:
        if backend not in ('opencv', 'matplotlib'):
            raise ValueError(f"ImageWindow: backend must be 'opencv' or 'matplotlib', "
                             f'got {backend!r}')
        self.backend = backend

    def show(self, image: np.ndarray, title: str) -> None:
        if self.backend == 'opencv':
            import cv2
            cv2.imshow(title, image)
            cv2.waitKey(0)
            cv2.destroyWindow(title)
            return
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(12, 8))
        ax.imshow(image[..., ::-1])
        ax.set_title(title)
        ax.axis('off')
        fig.tight_layout()
        plt.show()
        plt.close(fig)


class LiveWindow:
    """Shows a stream of BGR frames (camera, video) without waiting; :meth:`show` returns
    ``False`` once the user quits (``q``/Esc in an OpenCV window, closing the matplotlib
    figure)."""

    def __init__(self, backend: str, title: str) -> None:
        if backend not in ('opencv', 'matplotlib'):
            raise ValueError(f"LiveWindow: backend must be 'opencv' or 'matplotlib', "
                             f'got {backend!r}')
        self.backend, self.title = backend, title
        self._fig = self._artist = None

    def show(self, image: np.ndarray) -> bool:
        if self.backend == 'opencv':
            import cv2
            cv2.imshow(self.title, image)
            return (cv2.waitKey(1) & 0xFF) not in (ord('q'), 27)
        import matplotlib.pyplot as plt
        if self._fig is None:
            plt.ion()
            self._fig, ax = plt.subplots(figsize=(12, 8))
            ax.set_title(self.title)
            ax.axis('off')
            self._artist = ax.imshow(image[..., ::-1])
        elif not plt.fignum_exists(self._fig.number):
            return False
        else:
            self._artist.set_data(image[..., ::-1])
        plt.pause(0.001)
        return plt.fignum_exists(self._fig.number)

    def close(self) -> None:
        if self.backend == 'opencv':
            import cv2
            cv2.destroyWindow(self.title)
        elif self._fig is not None:
            import matplotlib.pyplot as plt
            plt.close(self._fig)


def window_backend() -> Tuple[Optional[str], str]:
    """``('opencv' | 'matplotlib', '')`` where a window can open here, else ``(None, why)``."""
    window, why = open_window()
    return (window.backend if window is not None else None), why


def open_window() -> Tuple[Optional[ImageWindow], str]:
    """``(window, '')`` where images can be shown here, else ``(None, why not)``."""
    missing = display_missing()
    if missing:
        return None, missing
    if opencv_has_gui():
        return ImageWindow('opencv'), ''
    if matplotlib_gui_backend() is not None:
        return ImageWindow('matplotlib'), ''
    return None, ('OpenCV is built without a GUI (opencv-python-headless) and matplotlib has no '
                  'interactive backend (install tkinter or PyQt to show windows)')


__all__ = ['open_window', 'window_backend', 'ImageWindow', 'LiveWindow', 'display_missing',
           'opencv_has_gui', 'matplotlib_gui_backend']
