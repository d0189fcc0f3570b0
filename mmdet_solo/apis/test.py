"""Dataset-level inference for the tools: ``single_gpu_test`` and ``multi_gpu_test`` (torchrun
ranks) on the one test loop of :mod:`mmdet_solo.engine.testing`, and the tools' set-up.

Both return one :class:`EncodedInstanceResult` per dataset image, in dataset order: masks kept
as COCO RLE from the moment they leave the model (a few KB per image instead of
``N x H x W`` bytes), evaluated, formatted and drawn like ``InstanceResult`` s.
"""
from __future__ import annotations

import os
import os.path as osp
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..engine.testing import run_test
from ..engine.trainer import unwrap_model
from ..structures.results import EncodedInstanceResult
from ..utils.display import open_window
from ..utils.visualization import show_result_ins

__all__ = ['EncodedInstanceResult', 'single_gpu_test', 'multi_gpu_test', 'result_to_dict',
           'check_classes', 'check_draw_dir', 'check_show', 'prepare_test']


def result_to_dict(result: Any) -> Dict[str, Any]:
    """Plain-data form of one image's result (the ``--out`` pickle entries; see tools/README.md)."""
    result = EncodedInstanceResult.from_result(result)
    return dict(masks=[dict(size=list(r['size']), counts=r['counts']) for r in result.rles],
                labels=result.labels.copy(), scores=result.scores.copy(),
                bboxes=result.bboxes.copy(), height=result.height, width=result.width)


# ------------------------------------------------------------------------------- classes
def check_classes(model_classes: Optional[Sequence[str]], dataset_classes: Optional[Sequence[str]],
                  checkpoint: str = 'the checkpoint') -> Optional[Tuple[str, ...]]:
    """Compare the model's (checkpoint meta) class names with the test dataset's.

    Returns ``None`` when they agree (or either is unknown). A different number of classes
    raises ``ValueError``. The same names in another order return the model's order (build
    the dataset with ``classes=`` that order, so labels map to the right COCO categories by
    name), with a warning. Different names warn that labels are mapped by index.
    """
    if model_classes is None or dataset_classes is None:
        return None
    model_classes, dataset_classes = tuple(model_classes), tuple(dataset_classes)
    if model_classes == dataset_classes:
        return None
    if len(model_classes) != len(dataset_classes):
        raise ValueError(f'{checkpoint} has {len(model_classes)} classes (meta CLASSES '
                         f'{_preview(model_classes)}) but the test dataset has '
                         f'{len(dataset_classes)} ({_preview(dataset_classes)}); set '
                         f'data.test.classes to the checkpoint\'s classes')
    if sorted(model_classes) == sorted(dataset_classes):
        warnings.warn(f'{checkpoint}: CLASSES {_preview(model_classes)} are the test dataset\'s '
                      f'classes in another order ({_preview(dataset_classes)}); re-ordering the '
                      f'dataset\'s classes to match the checkpoint')
        return model_classes
    diff = [(m, d) for m, d in zip(model_classes, dataset_classes) if m != d]
    warnings.warn(f'{checkpoint}: CLASSES differ from the test dataset\'s classes at '
                  f'{len(diff)} of {len(model_classes)} positions (checkpoint vs dataset: '
                  f'{diff[:5]}); labels are mapped to the dataset\'s categories by index and '
                  f'the checkpoint\'s names are used for display')
    return None


def _preview(names: Sequence[str], n: int = 5) -> str:
    shown = ', '.join(repr(x) for x in names[:n])
    return f'({shown}{", ..." if len(names) > n else ""})'


# ------------------------------------------------------------------------------- drawing
def _drawer(model: nn.Module, dataset: Any, show: bool, show_dir: Optional[str],
            score_thr: float):
    """A test-loop callback drawing each result (``None`` when nothing is to be drawn)."""
    if not (show or show_dir):
        return None
    names = getattr(unwrap_model(model), 'CLASSES', None)
    if names is None:
        names = getattr(dataset, 'CLASSES', None)

    def draw(idx: int, result: EncodedInstanceResult, meta: dict) -> None:
        img_path = meta.get('filename')
        if not img_path:
            raise KeyError("test: img_metas has no 'filename' (needed to draw the results); "
                           "keep 'filename' in Collect's meta_keys")
        out_file = osp.join(show_dir, _rel_name(dataset, idx, meta)) if show_dir else None
        drawn = show_result_ins(img_path, result, names, score_thr=score_thr, out_file=out_file)
        if window is not None:
            window.show(drawn, osp.basename(img_path))

    window = None
    if show:
        window, why_not = open_window()
        if window is None:
            raise RuntimeError(f'show=True: no window can open here: {why_not}; write the '
                               'drawn images to a folder with show_dir instead')
    return draw


def check_show(show: bool, drawn_to: Optional[str] = None, more_to_do: bool = False) -> bool:
    """Whether ``--show`` can open windows on this machine. Where it cannot, print why and go
    on without windows when the drawn images also go to ``drawn_to`` (e.g. ``'--show-dir
    vis/'``) or the run has ``more_to_do`` (``--eval``...); else raise ``ValueError``."""
    if not show:
        return False
    window, why_not = open_window()
    if window is not None:
        return True
    if not (drawn_to or more_to_do):
        raise ValueError(f'--show: no window can open here: {why_not}; use --show-dir DIR to '
                         'write the drawn images instead')
    then = (f'the drawn images are only written to {drawn_to}' if drawn_to
            else 'going on without showing them')
    print(f'warning: --show: no window can open here: {why_not}; {then}', file=sys.stderr,
          flush=True)
    return False


def check_draw_dir(dataset: Any, folder: str, option: str) -> None:
    """Refuse a drawing folder (``--show-dir``, ``--save_dir``) whose drawn images would
    replace the dataset's own image files."""
    from ..utils.misc import refuse_overwriting_inputs
    infos = getattr(dataset, 'img_infos', None)
    if infos is None:
        return
    prefix = getattr(dataset, 'img_prefix', '') or ''
    names = [info['filename'] for info in infos]
    refuse_overwriting_inputs((osp.join(folder, n) for n in names),
                              (osp.join(prefix, n) for n in names), option)


def _rel_name(dataset: Any, idx: int, meta: dict) -> str:
    infos = getattr(dataset, 'img_infos', None)
    if infos is not None:
        name = infos[idx].get('filename')
        if name:
            return name
    return osp.basename(meta['filename'])


# ------------------------------------------------------------------------------- public API
def single_gpu_test(model: nn.Module, data_loader, show: bool = False,
                    show_dir: Optional[str] = None, score_thr: float = 0.3,
                    progress: bool = True) -> List[EncodedInstanceResult]:
    """Run ``model`` over ``data_loader`` (sequential, ``shuffle=False``) with a progress bar.

    Returns one result per image in dataset order. ``show_dir`` writes the drawn results
    (instances above ``score_thr``, labelled with ``model.CLASSES``, else the dataset's) under
    the images' relative file names; ``show`` opens a window per image.
    """
    draw = _drawer(model, data_loader.dataset, show, show_dir, score_thr)
    return run_test(model, data_loader, on_result=draw, progress=progress)


def multi_gpu_test(model: nn.Module, data_loader, tmpdir: Optional[str] = None,
                   progress: bool = True) -> Optional[List[EncodedInstanceResult]]:
    """Each rank runs its share of ``data_loader`` (distributed test sampler); rank 0 returns
    all results in dataset order, each image once (the sampler's padding repeats are dropped);
    the other ranks return ``None``.

    The parts are gathered in memory or, with ``tmpdir`` (a folder every rank can read),
    through one JSON file per rank there.
    """
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        warnings.warn('multi_gpu_test: no process group is initialised; running single_gpu_test')
    return run_test(model, data_loader, tmpdir=tmpdir, progress=progress)


# ------------------------------------------------------------------------------- tool setup
def prepare_test(config: str, checkpoint: str, cfg_options: Optional[dict] = None,
                 launcher: str = 'none', device: Optional[str] = None,
                 allow_partial: bool = False, fp16: bool = False, use_ema: bool = True,
                 backend: str = 'pytorch'):
    """Shared set-up of the test tools: ``(cfg, model, dataset, distributed)``.

    Loads the config (plus ``cfg_options``), joins the torchrun process group for
    ``launcher='pytorch'`` (``'slurm'``), builds the test dataset (``test_mode=True``) and the model with the
    checkpoint's CLASSES (see :func:`check_classes`). ``backend='onnxruntime'``: ``checkpoint``
    is a model exported by tools/deployment/pytorch2onnx.py, run by ONNX Runtime on the CPU.
    """
    import copy

    from ..datasets import build_dataset
    from ..engine.dist import init_dist
    from .config_check import load_config
    from .inference import init_detector

    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config!r}')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {checkpoint!r}')
    cfg = load_config(config, cfg_options)
    if not isinstance(cfg.get('data'), dict) or not isinstance(cfg.data.get('test'), dict):
        raise KeyError(f'{config}: the config needs a data.test dataset dict')
    distributed = launcher != 'none'
    if distributed:
        backend = dict(cfg.get('dist_params') or {}).get('backend')
        init_dist(launcher, backend=backend if torch.cuda.is_available() else None)
    if device is None:
        if torch.cuda.is_available():
            device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if distributed else 'cuda:0'
        else:
            device = 'cpu'
    cfg.data.test.test_mode = True
    dataset = build_dataset(cfg.data.test, dict(test_mode=True))
    if backend == 'onnxruntime':
        from ..deploy import init_onnx_detector
        model = init_onnx_detector(cfg, checkpoint)
    else:
        model = init_detector(cfg, checkpoint, device=device, allow_partial=allow_partial,
                              fp16=fp16, use_ema=use_ema)
    order = check_classes(model.CLASSES, getattr(dataset, 'CLASSES', None), checkpoint)
    if order is not None:
        test_cfg = copy.deepcopy(cfg.data.test)
        test_cfg.classes = list(order)
        dataset = build_dataset(test_cfg, dict(test_mode=True))
    return cfg, model, dataset, distributed
