"""Read and write PaddlePaddle ``.pdparams`` files without Paddle and without running code.

A ``.pdparams`` file is a pickled ``{name: numpy.ndarray}`` (Paddle may add a
``StructuredToParameterName@@`` dict of strings). :func:`load_pdparams` unpickles it with a
restricted unpickler that admits numpy arrays, dtypes and plain containers only; any other
global (a class or function the file asks to import) is refused.
"""
from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict
from typing import Any, Dict, Mapping, Tuple

import numpy as np

__all__ = ['PdparamsError', 'load_pdparams', 'save_pdparams', 'is_pdparams_file']

_META_KEY = 'StructuredToParameterName@@'


class PdparamsError(RuntimeError):
    """A file that is not a usable ``.pdparams`` (or that would need arbitrary code)."""


def _latin1_encode(text: str, encoding: str = 'latin1') -> bytes:
    if encoding not in ('latin1', 'latin-1') or not isinstance(text, str):
        raise PdparamsError(f'refusing codecs.encode with encoding {encoding!r}')
    return text.encode('latin1')


def _numpy_globals() -> Dict[Tuple[str, str], Any]:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    allowed = {('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype,
               ('collections', 'OrderedDict'): OrderedDict,
               # protocol-2 pickles spell the raw bytes of an array as codecs.encode(str, 'latin1')
               ('_codecs', 'encode'): _latin1_encode}
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed[(mod, '_reconstruct')] = multiarray._reconstruct
        allowed[(mod, 'scalar')] = multiarray.scalar
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        obj = self._allowed.get((module, name))
        if obj is None:
            raise PdparamsError(
                f'refusing to unpickle {module}.{name}: a .pdparams file may contain only numpy '
                'arrays; this one would need arbitrary code to load, so it is not trusted')
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise PdparamsError('refusing a pickle persistent id: not a plain .pdparams file')


def is_pdparams_file(path: str) -> bool:
    """True for a ``.pdparams`` name (Paddle's own files carry that extension)."""
    return os.fspath(path).endswith('.pdparams')


def load_pdparams(path: str) -> 'OrderedDict[str, np.ndarray]':
    """``{name: ndarray}`` of a ``.pdparams`` file, read with the restricted unpickler.

    Raises:
        FileNotFoundError: no such file.
        PdparamsError: not a pickle, truncated, refused global, or not a dict of arrays.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Paddle checkpoint '{path}' does not exist")
    with open(path, 'rb') as f:
        data = f.read()
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except PdparamsError as e:
        raise PdparamsError(f"'{path}': {e}") from e
    except Exception as e:  # truncated or not a pickle at all
        raise PdparamsError(f"'{path}' is not a readable .pdparams file, or it is truncated "
                            f'({type(e).__name__}: {e})') from e
    if not isinstance(obj, Mapping):
        raise PdparamsError(f"'{path}': expected a dict of numpy arrays, got {type(obj).__name__}")
    out: 'OrderedDict[str, np.ndarray]' = OrderedDict()
    for k, v in obj.items():
        if k == _META_KEY:
            continue
        if not isinstance(k, str) or not isinstance(v, np.ndarray):
            raise PdparamsError(f"'{path}': entry {k!r} is a {type(v).__name__}, not a numpy array")
        out[k] = v
    if not out:
        raise PdparamsError(f"'{path}' holds no parameters")
    return out


def save_pdparams(state_dict: Mapping[str, np.ndarray], path: str) -> None:
    """Write ``{name: ndarray}`` as Paddle 2.x's ``paddle.save`` does (a pickle, protocol 4)."""
    data = OrderedDict((k, np.asarray(v)) for k, v in state_dict.items())
    with open(path, 'wb') as f:
        pickle.dump(dict(data), f, protocol=4)
