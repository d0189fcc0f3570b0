"""Atomic file writes: a reader sees the old file or the new one, never half of one."""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from typing import IO, Callable, Optional, Union

__all__ = ['atomic_write']

Writer = Callable[[IO], None]


def _default_mode() -> int:
    """The permissions a plain ``open()`` gives a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str, data: Union[bytes, str, Writer], *, text: bool = False,
                 mode: Optional[int] = None) -> None:
    """Write ``data`` to ``path`` through a hidden ``.NAME.<random>.tmp`` file in the same folder
    (created if missing), flushed to disk and moved over ``path`` with ``os.replace``.

    ``data`` is bytes, a str (written as UTF-8) or a callback that writes into the open file: a
    binary file, or a UTF-8 text file with ``text=True``; the file's ``name`` is the temporary
    path, for writers that only take a path. ``mode``: the file's permissions (default: those
    of a plain ``open()``). On any error the temporary file is removed and an existing ``path``
    is left as it was.
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    os.close(fd)
    try:
        with open(tmp, 'w' if text else 'wb', encoding='utf-8' if text else None) as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode('utf-8') if isinstance(data, str) and not text else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
