"""Run an exported model (``tools/deployment/pytorch2onnx.py``) with ONNX Runtime and get the
``InstanceResult`` s of :func:`mmdet_solo.apis.inference_detector`: same preprocessing (the
config's test pipeline and collate), same last step (``paste_masks``, the PyTorch path's code).
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from ..config import Config
from ..models.heads.postprocess import Result, paste_masks, read_test_cfg
from ..structures import EncodedInstanceResult, InstanceResult

ImageLike = Union[str, np.ndarray]
METADATA_KEY = 'mmdet_solo'   # ONNX metadata_props key of the export settings (JSON)

__all__ = ['ONNXRuntimeDetector', 'init_onnx_detector', 'results_from_outputs', 'METADATA_KEY']


def results_from_outputs(scores: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                         counts: np.ndarray, img_metas: Sequence[dict], mask_thr: float,
                         rescale: bool = True, encode: bool = False) -> List[Result]:
    """The graph's padded outputs (see ``mmdet_solo.deploy.graph``) → one result per image:
    the first ``counts[i]`` entries, masks pasted by ``paste_masks`` as in the PyTorch path."""
    results = []
    for i, meta in enumerate(img_metas):
        n = int(counts[i])
        h, w = int(meta['img_shape'][0]), int(meta['img_shape'][1])
        out_hw = (int(meta['ori_shape'][0]), int(meta['ori_shape'][1])) if rescale else (h, w)
        if n == 0:
            empty = InstanceResult.empty(*out_hw)
            results.append(EncodedInstanceResult.from_result(empty) if encode else empty)
            continue
        soft = torch.from_numpy(np.ascontiguousarray(masks[i, :n]))
        results.append(paste_masks(soft, (h, w), out_hw, mask_thr, np.asarray(labels[i, :n]),
                                   np.asarray(scores[i, :n]), rescale=rescale, encode=encode))
    return results


def read_metadata(path: str) -> Dict[str, Any]:
    """The export settings stored in the ONNX file (classes, test_cfg, max_candidates...)."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    raise ValueError(f'{path}: no {METADATA_KEY!r} metadata; export the model with '
                     'tools/deployment/pytorch2onnx.py')


class ONNXRuntimeDetector(nn.Module):
    """An exported model behind the detector's interface (``model(img, img_metas,
    return_loss=False, rescale, encode_masks)`` → results), so that ``inference_detector``'s
    preprocessing and the test loop of ``tools/test_ins.py`` run it unchanged.

    Args:
        onnx_file: the exported model.
        cfg: the config (its test pipeline preprocesses the images); its ``test_cfg`` must be
            the one baked into the graph at export.
        num_threads: ONNX Runtime intra-op threads (0: its default).
    """

    def __init__(self, onnx_file: str, cfg: Config, num_threads: int = 0) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ImportError('ONNXRuntimeDetector needs onnxruntime: pip install '
                              '"mmdet_solo[deploy]" (requirements/deploy.txt)') from e
        if not osp.isfile(onnx_file):
            raise FileNotFoundError(f'ONNX model not found: {onnx_file!r}')
        self.meta = read_metadata(onnx_file)
        _check_test_cfg(dict(cfg.get('test_cfg') or {}), self.meta['test_cfg'], onnx_file)
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        self.session = ort.InferenceSession(onnx_file, options,
                                            providers=['CPUExecutionProvider'])
        self.input_name = self.session.get_inputs()[0].name
        self.mask_thr = float(read_test_cfg(self.meta['test_cfg'], 'mask_thr'))
        self.CLASSES = tuple(self.meta['classes']) if self.meta.get('classes') else None
        self.cfg = cfg
        # a zero-size parameter: the callers (inference_detector, the test loop) move the
        # inputs to the device of the model's first parameter, here the CPU
        self.register_parameter('_device', nn.Parameter(torch.zeros(0), requires_grad=False))

    def run(self, img: np.ndarray) -> List[np.ndarray]:
        """The graph's four outputs for a (B, 3, H, W) float32 batch."""
        if img.shape[-1] % 32 or img.shape[-2] % 32:
            raise ValueError(f'ONNXRuntimeDetector: input {tuple(img.shape)}: height and width '
                             'must be multiples of 32 (Pad size_divisor=32 in the test pipeline)')
        return self.session.run(None, {self.input_name: np.ascontiguousarray(img, np.float32)})

    @torch.no_grad()
    def forward(self, img, img_metas, return_loss: bool = False, rescale: bool = True,
                encode_masks: bool = False) -> List[Result]:
        if return_loss:
            raise ValueError('ONNXRuntimeDetector: inference only (return_loss=False)')
        if isinstance(img, (list, tuple)):   # MultiScaleFlipAug: one entry per augmentation
            if len(img) != 1:
                raise NotImplementedError('test-time augmentation is not supported')
            img, img_metas = img[0], img_metas[0]
        scores, labels, masks, counts = self.run(img.cpu().numpy())
        return results_from_outputs(scores, labels, masks, counts, img_metas, self.mask_thr,
                                    rescale=rescale, encode=encode_masks)


def _check_test_cfg(cfg: dict, baked: dict, onnx_file: str) -> None:
    """The config's test_cfg must be the graph's: its thresholds are constants in it."""
    diff = {k: (cfg.get(k), baked.get(k)) for k in set(cfg) | set(baked)
            if cfg.get(k) != baked.get(k)}
    if diff:
        shown = ', '.join(f'{k}: config {c!r} vs exported {b!r}'
                          for k, (c, b) in sorted(diff.items()))
        raise ValueError(f'{onnx_file}: the config\'s test_cfg differs from the one exported '
                         f'into the graph ({shown}); re-export with the new test_cfg '
                         '(--cfg-options test_cfg.KEY=VALUE)')


def init_onnx_detector(config: Union[str, Config], onnx_file: str,
                       cfg_options: Optional[dict] = None,
                       num_threads: int = 0) -> ONNXRuntimeDetector:
    """``init_detector`` for an exported model: use it with ``inference_detector``."""
    from ..apis.config_check import load_config
    cfg = config if isinstance(config, Config) else load_config(config, cfg_options)
    return ONNXRuntimeDetector(onnx_file, cfg, num_threads=num_threads)
