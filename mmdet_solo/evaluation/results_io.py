"""Atomic JSON writing for result files."""
from __future__ import annotations

import json
import os.path as osp
from typing import Any

from ..utils.io import atomic_write


def dump_json_atomic(obj: Any, path: str) -> str:
    """Write ``obj`` as JSON to ``path`` via a temporary file + ``os.replace`` (no half files)."""
    atomic_write(path, lambda f: json.dump(obj, f), text=True)
    return path


def load_json(path: str) -> Any:
    if not osp.isfile(path):
        raise FileNotFoundError(f'JSON file not found: {path!r}')
    with open(path, encoding='utf-8') as f:
        return json.load(f)
