"""Per-image records in flat numpy buffers that forked data-loader workers share.

A list of Python dicts is touched by every worker that reads it (reference counts, and the
cyclic garbage collector walks every container), so copy-on-write pages become private: with
COCO train2017 each worker's memory grew by ~1 GB over an epoch. :class:`SerializedList` keeps
each record as compact JSON bytes in one ``uint8`` array plus an ``int64`` offset array, the
layout of detectron2's ``DatasetFromList(serialize=True)`` and mmengine's ``serialize_data``
(which use pickle; JSON is used here so that nothing but plain data can ever be decoded).
Indexing decodes one record; the buffers are never written after construction, so workers
share their pages with the main process.

With ``compress=True`` each record is also zlib-compressed (level 1): COCO polygon records
shrink ~2x for ~20 µs more per decoded record (measured: 353 -> ~165 MiB for COCO-train-sized
annotations, BENCHMARKS.md "Scale").

Records must be JSON data: dicts with str keys, lists, str, int, float, bool, None. Floats
round-trip exactly (``repr`` of a double), so e.g. boxes decoded from a record equal the ones
it was built from bit for bit.
"""
from __future__ import annotations

import json
import zlib
from typing import Any, Iterable, Iterator, Sequence, overload

import numpy as np

__all__ = ['SerializedList']

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(',', ':'), allow_nan=True)


class SerializedList(Sequence):
    """A read-only sequence of JSON records stored in two numpy arrays (see module doc)."""

    def __init__(self, records: Iterable[Any], compress: bool = False) -> None:
        self.compressed = bool(compress)
        chunks, ends, total = [], [], 0
        for i, record in enumerate(records):
            try:
                data = _ENCODER.encode(record).encode('utf-8')
            except (TypeError, ValueError) as e:
                raise TypeError(f'SerializedList: record {i} is not JSON data ({e}); records '
                                'must be dicts/lists of str, int, float, bool and None') from e
            if self.compressed:
                data = zlib.compress(data, 1)
            chunks.append(data)
            total += len(data)
            ends.append(total)
        self._ends = np.asarray(ends, dtype=np.int64)
        self._buffer = np.frombuffer(b''.join(chunks), dtype=np.uint8) if chunks \
            else np.zeros(0, dtype=np.uint8)
        del chunks

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, idx: int) -> Any: ...
    @overload
    def __getitem__(self, idx: slice) -> list: ...

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return [self[i] for i in range(*idx.indices(len(self)))]
        n = len(self._ends)
        i = int(idx)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f'SerializedList index {idx} out of range for {n} records')
        start = int(self._ends[i - 1]) if i > 0 else 0
        data = self._buffer[start:int(self._ends[i])].tobytes()
        return json.loads(zlib.decompress(data) if self.compressed else data)

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))

    @property
    def nbytes(self) -> int:
        """Bytes held by the two buffers."""
        return int(self._buffer.nbytes + self._ends.nbytes)

    def __repr__(self) -> str:
        return f'SerializedList({len(self)} records, {self.nbytes / 2 ** 20:.1f} MiB)'
