"""Atomic JSON writing for result files."""
from __future__ import annotations

import json
import os
import os.path as osp
import tempfile
from typing import Any


def dump_json_atomic(obj: Any, path: str) -> str:
    """Write ``obj`` as JSON to ``path`` via a temporary file + ``os.replace`` (no half files)."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(obj, f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_json(path: str) -> Any:
    if not osp.isfile(path):
        raise FileNotFoundError(f'JSON file not found: {path!r}')
    with open(path, encoding='utf-8') as f:
        return json.load(f)
