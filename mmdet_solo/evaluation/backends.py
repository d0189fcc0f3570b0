"""COCO evaluation backends: pycocotools (the default) or faster-coco-eval (optional, C++).

:func:`coco_api` returns the ``COCO`` class and the ``COCOeval`` class of a backend; both
backends are used the same way::

    api = coco_api('faster-coco-eval')
    coco_gt = api.COCO(ann_file)
    coco_dt = coco_gt.loadRes(dets)          # list of dicts, RLE 'segmentation' and/or 'bbox'
    coco_eval = api.COCOeval(coco_gt, coco_dt, 'segm')
    coco_eval.params.imgIds = ...            # optional, as with pycocotools
    coco_eval.evaluate(); coco_eval.accumulate(); coco_eval.summarize()
    coco_eval.stats                          # the 12 standard numbers (np.ndarray)
    coco_eval.eval['precision']              # (T, R, K, A, M), -1 where there is no ground truth

``faster-coco-eval`` (``pip install faster-coco-eval``) reimplements pycocotools' COCOeval in
C++ (IoUs, matching and accumulation). What was checked against pycocotools 2.0.11 with
faster-coco-eval 1.8.0 (``tests/evaluation/test_eval_backends.py`` checks the first point; it
also passes with faster-coco-eval 1.6.0):

* Results: the same numbers, not always bit-identical: ``stats`` and ``eval['precision']``
  (same (T, R, K, A, M) layout, same -1 entries) differ by at most 2.2e-16 (one ulp; on a
  500-image set ~0.1 % of the precision entries and none of the stats differed),
  ``eval['recall']`` / ``['scores']`` were identical (segm and bbox; polygon, compressed-RLE
  and crowd uncompressed-RLE ground truth).
* RLEs: its ``COCO`` and ``mask`` accept pycocotools-style RLEs: compressed ``counts`` as
  ``str`` or ``bytes`` (as ``pycocotools.mask.encode`` returns them) and uncompressed
  (``counts`` a list, e.g. crowd ground truth); ``faster_coco_eval.mask.encode`` also returns
  ``bytes`` counts, and the compressed strings are the same as pycocotools'.
* Input mutation: ``loadRes(list)`` mutates the dicts of the list like pycocotools does (it
  adds ``id``, ``area``, ``iscrowd``, and ``bbox`` when missing; a bbox-only result also gets a
  box polygon ``segmentation``); the list itself is copied (shallow) where pycocotools keeps it.
  A segm evaluation then adds an ``rle`` entry (the compressed RLE) to every detection and
  ground-truth annotation dict (pycocotools instead overwrites ground-truth ``segmentation``
  with its RLE); both add ``ignore`` to ground truth. The ``segmentation`` dicts themselves are
  left untouched. Pass copies (``[dict(d) for d in dets]``) to keep the caller's dicts clean.
  ``COCO(dict)`` is accepted (pycocotools wants a path) and shares the dict's annotation list.
* Not in pycocotools: ``loadRes([])`` works (an empty result set); ``COCO`` warns when an
  annotation has id 0 (both backends treat id 0 as "unmatched"). Not in faster-coco-eval:
  ``COCOeval.evalImgs`` stays empty (the per-image results live in C++).
* Mixing backends (a pycocotools ``COCO`` with the faster ``COCOeval`` or the reverse) gave the
  same numbers for segm, but it is not what this module promises: use one backend's classes.

The glue (``FasterCOCOeval``, this backend's ``COCOeval``, a subclass of
``faster_coco_eval.COCOeval_faster``): ``COCOeval_faster`` logs through ``logging``
(``logger.info``) where pycocotools prints; ``FasterCOCOeval`` prints to ``sys.stdout``, so
``contextlib.redirect_stdout`` captures and silences it as it does pycocotools (without
changing the ``print_function`` of the ``COCO`` objects), and its ``summarize()`` prints only
the 12 standard lines (faster-coco-eval adds AR@0.5 and AR@0.75; they stay in ``all_stats``).
Its ``COCO`` logs at debug level only: nothing to silence.
"""
from __future__ import annotations

import difflib
import functools
from typing import Any, List, NamedTuple

EVAL_BACKENDS = ('pycocotools', 'faster-coco-eval')
DEFAULT_EVAL_BACKEND = 'pycocotools'


class CocoApi(NamedTuple):
    """The classes of one COCO evaluation backend."""

    name: str   #: one of :data:`EVAL_BACKENDS`
    COCO: type  #: ground truth / results class (``COCO(path)``, ``.loadRes(list_or_path)``)
    COCOeval: type  #: ``COCOeval(cocoGt, cocoDt, iouType)``, pycocotools' interface


def _stdout_print(*args: Any) -> None:
    """``print`` looked up at call time, so ``contextlib.redirect_stdout`` applies."""
    print(*args)


@functools.lru_cache(maxsize=None)
def _faster_cocoeval_class(base: type) -> type:
    """``COCOeval_faster`` printing to stdout like pycocotools (see the module docstring)."""

    class FasterCOCOeval(base):  # type: ignore[misc, valid-type]
        """faster-coco-eval's ``COCOeval_faster`` with pycocotools' output.

        ``kwargs`` go to ``COCOeval_faster`` (e.g. ``rle_iou_max_workers``, ``print_function``).
        """

        def __init__(self, cocoGt: Any = None, cocoDt: Any = None, iouType: str = 'segm',
                     **kwargs: Any) -> None:
            kwargs.setdefault('print_function', _stdout_print)
            super().__init__(cocoGt, cocoDt, iouType, **kwargs)

        def summarize(self) -> None:
            """Compute ``stats`` / ``all_stats``; print the lines of ``stats`` only."""
            lines: List[str] = []
            printer = self.print_function
            self.print_function = lambda *args: lines.append(' '.join(map(str, args)))
            try:
                super().summarize()
            finally:
                self.print_function = printer
            for line in lines[:len(self.stats)]:
                printer(line)

    FasterCOCOeval.__qualname__ = 'FasterCOCOeval'
    return FasterCOCOeval


def _check_backend(backend: Any) -> str:
    if not isinstance(backend, str):
        raise TypeError(f'COCO evaluation backend must be a string {list(EVAL_BACKENDS)}, '
                        f'got {type(backend).__name__} {backend!r}')
    if backend not in EVAL_BACKENDS:
        close = difflib.get_close_matches(backend.lower(), EVAL_BACKENDS, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ''
        raise ValueError(f'unknown COCO evaluation backend {backend!r}; allowed: '
                         f"{', '.join(repr(b) for b in EVAL_BACKENDS)}{hint}")
    return backend


def coco_api(backend: str = DEFAULT_EVAL_BACKEND) -> CocoApi:
    """The ``COCO`` and ``COCOeval`` classes of ``backend`` (one of :data:`EVAL_BACKENDS`).

    Raises:
        ValueError: unknown ``backend`` (the message lists the allowed ones and a close match).
        ImportError: ``'faster-coco-eval'`` without the optional package installed.
    """
    backend = _check_backend(backend)
    if backend == 'pycocotools':
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        return CocoApi(backend, COCO, COCOeval)
    try:
        from faster_coco_eval import COCO as FasterCOCO
        from faster_coco_eval import COCOeval_faster
    except ImportError as exc:
        raise ImportError(
            "COCO evaluation backend 'faster-coco-eval' needs the optional package "
            "faster-coco-eval, which is not installed: pip install faster-coco-eval "
            f"(or use the default backend '{DEFAULT_EVAL_BACKEND}')") from exc
    return CocoApi(backend, FasterCOCO, _faster_cocoeval_class(COCOeval_faster))
