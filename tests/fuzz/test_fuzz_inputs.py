"""Property-based fuzzing of the data pipeline, training forward and inference with bad input.

Random images (1x1 to 4000x4000, extreme aspect ratios, 1/3/4 channels, uint8/float) and
random COCO-style annotations (polygons of 0-50 points, RLEs, boxes out of range, empty) go
through the training pipeline + ``forward_train`` and through ``inference_detector``. Each
example must either give a result (finite losses; a well-formed ``InstanceResult``) or raise
one of the project's documented error types (``ValueError``, ``TypeError``, ``KeyError``,
``OSError``; docs/ERRORS.md) with a message; any other exception fails. The number of examples
is bounded so that the file runs in well under a minute.
"""
import math
import os

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from golden_utils import ROOT  # noqa: E402
from mmdet_solo.apis import inference_detector, init_detector  # noqa: E402
from mmdet_solo.config import Config  # noqa: E402
from mmdet_solo.datasets.collate import collate  # noqa: E402
from mmdet_solo.datasets.pipelines import Compose  # noqa: E402
from mmdet_solo.structures import InstanceResult  # noqa: E402

DOCUMENTED = (ValueError, TypeError, KeyError, OSError)
CONFIG = os.path.join(ROOT, 'configs', 'shapes', 'solov2_light_r18_shapes.py')
FUZZ = settings(max_examples=int(os.environ.get('FUZZ_EXAMPLES', 25)), deadline=None,
                suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    m = init_detector(CONFIG, None, device='cpu')
    with torch.no_grad():
        m.bbox_head.solo_cate.bias.zero_()  # detections on any input: post-processing runs
    return m


@st.composite
def images(draw):
    side = st.one_of(st.sampled_from([1, 2, 3, 31, 4000]), st.integers(1, 64),
                     st.integers(65, 4000))
    h, w = draw(side), draw(side)
    if h * w > 4_000_000:  # keep memory/time bounded: extreme sizes stay, areas are capped
        w = max(1, 4_000_000 // h)
    channels = draw(st.sampled_from([None, 1, 3, 4]))
    shape = (h, w) if channels is None else (h, w, channels)
    kind = draw(st.sampled_from(['uint8', 'float255', 'float01']))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    if kind == 'float255':
        img = img.astype(np.float32)
    elif kind == 'float01':
        img = img.astype(np.float32) / 255
    return img


@st.composite
def annotations(draw, h, w):
    n = draw(st.integers(0, 4))
    bboxes, labels, masks = [], [], []
    coord = st.floats(-50, max(h, w) + 50, allow_nan=False, width=32)
    for _ in range(n):
        kind = draw(st.sampled_from(['polygon', 'rle', 'empty']))
        if kind == 'polygon':
            k = draw(st.integers(0, 50))
            segm = [[draw(coord) for _ in range(2 * k)]]
        elif kind == 'rle':
            m = np.zeros((h, w), np.uint8, order='F')
            y, x = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
            m[y:y + draw(st.integers(0, h)), x:x + draw(st.integers(0, w))] = 1
            import pycocotools.mask as mask_utils
            segm = mask_utils.encode(m)
            segm['counts'] = segm['counts'].decode()
        else:
            segm = []
        x1, y1 = draw(coord), draw(coord)
        bboxes.append([x1, y1, x1 + draw(st.floats(0, 300, width=32)),
                       y1 + draw(st.floats(0, 300, width=32))])
        labels.append(draw(st.integers(0, 4)))
        masks.append(segm)
    return dict(bboxes=np.array(bboxes, np.float32).reshape(-1, 4),
                labels=np.array(labels, np.int64), masks=masks)


def _train_pipeline(cfg):
    steps = [s for s in cfg.train_pipeline if s['type'] != 'LoadImageFromFile']
    return Compose([dict(type='LoadImageFromFile')] + steps)


def _documented(err: BaseException) -> None:
    assert isinstance(err, DOCUMENTED), f'undocumented {type(err).__name__}: {err}'
    assert str(err).strip(), f'{type(err).__name__} without a message'


@FUZZ
@given(data=st.data())
def test_training_pipeline_and_forward_train(model, data):
    img = data.draw(images())
    h, w = img.shape[:2]
    ann = data.draw(annotations(h, w))
    cfg = model.cfg
    try:
        sample = _train_pipeline(cfg)(dict(img=img, ann_info=ann))
        if sample is None:
            return
        batch = collate([sample])
        model.train()
        losses = model.forward_train(img=batch['img'], img_metas=batch['img_metas'],
                                     gt_bboxes=batch['gt_bboxes'], gt_labels=batch['gt_labels'],
                                     gt_masks=batch['gt_masks'])
    except Exception as e:  # noqa: BLE001 - the property: only documented errors
        _documented(e)
        return
    finally:
        model.eval()
    for k, v in losses.items():
        assert torch.isfinite(torch.as_tensor(v)).all(), (k, v)


@FUZZ
@given(img=images())
def test_inference_detector(model, img):
    try:
        res = inference_detector(model, img)
    except Exception as e:  # noqa: BLE001
        _documented(e)
        return
    h, w = img.shape[:2]
    assert isinstance(res, InstanceResult) and res.masks.shape[1:] == (h, w)
    assert np.isfinite(res.scores).all() and len(res) <= model.test_cfg['max_per_img']
    assert not math.isnan(float(res.scores.sum()))
