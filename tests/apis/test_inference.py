"""High-level API (``init_detector``, ``inference_detector``, ``show_result_ins``) and
``InstanceResult``.

Checkpoints are written in the ORIGINAL release's layout (mmcv 0.2.16 ``save_checkpoint``:
``{'meta': {'mmdet_version', 'config', 'CLASSES', 'epoch', 'iter'}, 'state_dict'}``), so these
tests also show that the released files load as they are.
"""
import logging
import os
import shutil

import cv2
import numpy as np
import pytest
import torch

from golden_utils import CONFIGS, GOLDEN_DIR, ROOT, compare_detections, golden_state_dict, load_case

from mmdet_solo.apis import inference_detector, init_detector, show_result_ins
from mmdet_solo.datasets.class_names import COCO_CLASSES
from mmdet_solo.structures import InstanceResult, masks_to_boxes

GOLDEN = 'solov2_light_448_r18_fpn_8gpu_3x'
GOLDEN_CONFIG = os.path.join(ROOT, CONFIGS[GOLDEN])
PUBLIC_JPG = os.path.join(GOLDEN_DIR, 'public.jpg')
CUSTOM_CLASSES = tuple(f'thing{i}' for i in range(80))


def _save_original_layout(path, state_dict, classes=COCO_CLASSES, config_text='# config'):
    meta = {'mmdet_version': '1.0.0+f4cd03b', 'config': config_text, 'epoch': 12, 'iter': 87960}
    if classes is not None:
        meta['CLASSES'] = tuple(classes)
    torch.save({'meta': meta, 'state_dict': state_dict}, str(path))
    return str(path)


@pytest.fixture(scope='module')
def golden_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'SOLOv2_LIGHT_448_R18_3x.pth'
    with open(GOLDEN_CONFIG) as f:
        text = f.read()
    return _save_original_layout(path, golden_state_dict(GOLDEN), CUSTOM_CLASSES, text)


@pytest.fixture(scope='module')
def golden_model(golden_ckpt):
    return init_detector(GOLDEN_CONFIG, golden_ckpt, device='cpu')


# ----------------------------------------------------------------------------- init_detector
def test_init_detector_loads_original_checkpoint(golden_ckpt, caplog):
    with caplog.at_level(logging.WARNING):
        model = init_detector(GOLDEN_CONFIG, golden_ckpt, device='cpu')
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warnings, [r.getMessage()[:500] for r in warnings]
    sd = golden_state_dict(GOLDEN)
    own = model.state_dict()
    assert set(own) == set(sd)
    differ = [k for k, v in sd.items() if not torch.equal(own[k].cpu(), v.to(own[k].dtype))]
    assert not differ, f'{len(differ)} tensors not loaded: {differ[:10]}'
    assert model.CLASSES == CUSTOM_CLASSES          # from the checkpoint meta, not the config
    assert not model.training
    assert next(model.parameters()).device.type == 'cpu'


def test_init_detector_wrong_number_of_classes(tmp_path):
    ckpt = _save_original_layout(tmp_path / 'bad.pth', golden_state_dict(GOLDEN),
                                 classes=('cat', 'dog', 'bird'))
    with pytest.raises(ValueError, match=r'3 class names.*num_classes=80'):
        init_detector(GOLDEN_CONFIG, ckpt, device='cpu')


def test_init_detector_bare_state_dict_falls_back_to_coco(tmp_path):
    path = str(tmp_path / 'bare.pth')
    torch.save(golden_state_dict(GOLDEN), path)
    model = init_detector(GOLDEN_CONFIG, path, device='cpu')
    assert model.CLASSES == COCO_CLASSES and len(model.CLASSES) == 80


def test_init_detector_without_checkpoint_uses_config_classes():
    model = init_detector(GOLDEN_CONFIG, None, device='cpu')
    assert model.CLASSES == COCO_CLASSES


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the message shown without CUDA')
def test_init_detector_cuda_without_cuda():
    with pytest.raises(RuntimeError, match=r"device='cuda:0'.*CUDA is not available.*device='cpu'"):
        init_detector(GOLDEN_CONFIG, None, device='cuda:0')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_init_detector_on_cuda(golden_ckpt):
    model = init_detector(GOLDEN_CONFIG, golden_ckpt, device='cuda:0')
    assert next(model.parameters()).is_cuda
    res = inference_detector(model, PUBLIC_JPG)
    assert res.masks.shape[1:] == (400, 600)


# ----------------------------------------------------------------------------- inference_detector
def _same(a, b):
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.bboxes, b.bboxes)


def test_inference_path_ndarray_and_list(golden_model):
    arr = cv2.imread(PUBLIC_JPG)
    by_array = inference_detector(golden_model, arr)
    assert isinstance(by_array, InstanceResult) and len(by_array) > 0
    assert by_array.masks.shape == (len(by_array), 400, 600)
    # a list gives a list, one result per image, in order; a path gives the ndarray's result
    small = cv2.resize(arr, (300, 200), interpolation=cv2.INTER_LINEAR)
    out = inference_detector(golden_model, [PUBLIC_JPG, small])
    assert isinstance(out, list) and len(out) == 2
    assert all(isinstance(r, InstanceResult) for r in out)
    _same(out[0], by_array)
    assert out[1].masks.shape[1:] == (200, 300)


def test_inference_rejects_other_inputs(golden_model):
    with pytest.raises(TypeError, match='file path or a BGR ndarray'):
        inference_detector(golden_model, torch.zeros(3, 10, 10))


@pytest.mark.parametrize('which', ['infer', 'infer_strict'])
def test_inference_matches_original_release(golden_model, which):
    """Preprocessing + model + post-processing against the original on public.jpg."""
    ref = load_case(GOLDEN).infer[which]
    assert dict(golden_model.test_cfg) == dict(load_case(GOLDEN).infer['infer']['test_cfg'])
    saved = golden_model.test_cfg
    golden_model.test_cfg = dict(ref['test_cfg'])
    try:
        result = inference_detector(golden_model, PUBLIC_JPG)
    finally:
        golden_model.test_cfg = saved
    stats = compare_detections(result, ref)
    print(which, len(result), stats)


def _channels_last(model) -> bool:
    weight = model.backbone.conv1.weight
    return weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


def test_channels_last_inference_matches_original_release(golden_ckpt):
    model = init_detector(GOLDEN_CONFIG, golden_ckpt, device='cpu')
    assert _channels_last(model)            # the CPU default for a model without DCN
    compare_detections(inference_detector(model, PUBLIC_JPG), load_case(GOLDEN).infer['infer'])
    model = init_detector(GOLDEN_CONFIG, golden_ckpt, device='cpu',
                          cfg_options={'channels_last': False})
    assert not _channels_last(model)
    compare_detections(inference_detector(model, PUBLIC_JPG), load_case(GOLDEN).infer['infer'])


def test_dcn_models_stay_contiguous_by_default():
    config = os.path.join(ROOT, 'configs', 'solov2', 'solov2_light_512_dcn_r50_fpn_8gpu_3x.py')
    assert not _channels_last(init_detector(config, device='cpu'))
    assert _channels_last(init_detector(config, device='cpu', cfg_options={'channels_last': True}))


def test_fp16_inference_autocasts_the_network_only(golden_ckpt, golden_model, monkeypatch):
    model = init_detector(GOLDEN_CONFIG, golden_ckpt, device='cpu', fp16=True)
    assert model.inference_dtype == torch.bfloat16 and golden_model.inference_dtype is None
    seen = {}
    real_predict = type(model.bbox_head).predict

    def predict(head, outputs, *args, **kwargs):
        seen['cate'] = outputs.cate_preds[0].dtype
        return real_predict(head, outputs, *args, **kwargs)
    monkeypatch.setattr(type(model.bbox_head), 'predict', predict)
    low = inference_detector(model, PUBLIC_JPG)
    assert seen['cate'] == torch.float32      # post-processing in float32
    monkeypatch.setattr(type(model.bbox_head), 'predict', real_predict)
    ref = inference_detector(golden_model, PUBLIC_JPG)
    # bfloat16 moves the scores a little: the best detections stay the same
    np.testing.assert_array_equal(low.labels[:5], ref.labels[:5])
    np.testing.assert_allclose(low.scores[:5], ref.scores[:5], atol=0.03)
    assert not np.array_equal(low.scores, ref.scores[:len(low.scores)])  # it did run in bf16


# ----------------------------------------------------------------------------- README snippet
# The inference example of the original project's guide (docs/GETTING_STARTED.md and
# demo/inference_demo.py of WXinlong/SOLO), verbatim.
ORIGINAL_SNIPPET = '''\
from mmdet.apis import init_detector, inference_detector, show_result_pyplot, show_result_ins
import mmcv


config_file = '../configs/solo/decoupled_solo_r50_fpn_8gpu_3x.py'
# download the checkpoint from model zoo and put it in `checkpoints/`
checkpoint_file = '../checkpoints/DECOUPLED_SOLO_R50_3x.pth'

# build the model from a config file and a checkpoint file
model = init_detector(config_file, checkpoint_file, device='cuda:0')

# test a single image
img = 'demo.jpg'
result = inference_detector(model, img)

show_result_ins(img, result, model.CLASSES, score_thr=0.25, out_file="demo_out.jpg")
'''


@pytest.mark.slow
def test_original_readme_snippet_runs(tmp_path, monkeypatch):
    """The snippet with only these edits: the package name, no ``import mmcv`` (unused there
    and not a dependency), ``device='cpu'`` and the output path. Run from a ``demo/`` folder
    of a tree with ``configs/`` and ``checkpoints/`` as in the original repository."""
    from mmdet_solo.config import Config
    from mmdet_solo.models import build_detector
    cfg = Config.fromfile(os.path.join(ROOT, 'configs/solo/decoupled_solo_r50_fpn_8gpu_3x.py'))
    cfg.model.pretrained = None
    torch.manual_seed(0)
    model = build_detector(cfg.model, test_cfg=cfg.get('test_cfg'))
    (tmp_path / 'checkpoints').mkdir()
    _save_original_layout(tmp_path / 'checkpoints' / 'DECOUPLED_SOLO_R50_3x.pth', model.state_dict())
    del model
    os.symlink(os.path.join(ROOT, 'configs'), tmp_path / 'configs')
    (tmp_path / 'demo').mkdir()
    shutil.copy(PUBLIC_JPG, tmp_path / 'demo' / 'demo.jpg')
    out_file = tmp_path / 'output.jpg'

    code = (ORIGINAL_SNIPPET.replace('from mmdet.apis', 'from mmdet_solo.apis')
            .replace('import mmcv\n', '')
            .replace("device='cuda:0'", "device='cpu'")
            .replace('out_file="demo_out.jpg"', f'out_file={str(out_file)!r}'))
    assert code.count('mmdet_solo') == 1 and "device='cpu'" in code and str(out_file) in code
    monkeypatch.chdir(tmp_path / 'demo')
    ns = {}
    exec(compile(code, 'inference_demo.py', 'exec'), ns)
    assert out_file.is_file()
    drawn = cv2.imread(str(out_file))
    assert drawn is not None and drawn.shape == (400, 600, 3)
    assert isinstance(ns['result'], InstanceResult)
    assert ns['result'].masks.shape[1:] == (400, 600)
    assert ns['model'].CLASSES == COCO_CLASSES


# ----------------------------------------------------------------------------- InstanceResult
def test_masks_to_boxes_hand_made():
    m = np.zeros((4, 6, 8), bool)
    m[0, 1:3, 2:5] = True                    # rows 1-2, cols 2-4
    m[1, 5, 7] = True                        # the bottom-right pixel
    m[2, 0:6, 0:8] = True                    # everything
    # m[3] empty
    m[0, 4, 0] = True                        # a second blob extends the box of mask 0
    boxes = masks_to_boxes(m)
    assert boxes.dtype == np.float32 and boxes.shape == (4, 4)
    np.testing.assert_array_equal(boxes, [[0, 1, 5, 5], [7, 5, 8, 6], [0, 0, 8, 6], [0, 0, 0, 0]])
    np.testing.assert_array_equal(masks_to_boxes(torch.from_numpy(m)), boxes)
    np.testing.assert_array_equal(masks_to_boxes(m.astype(np.uint8)), boxes)
    assert masks_to_boxes(np.zeros((0, 6, 8), bool)).shape == (0, 4)


def _res(n=3, h=10, w=12):
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        masks[i, i:i + 3, 2 * i:2 * i + 4] = True
    return InstanceResult(masks, np.arange(n), np.linspace(0.9, 0.5, n))


def test_instance_result_fields():
    r = _res()
    assert len(r) == 3 and r.image_size == (10, 12)
    assert r.masks.dtype == np.bool_ and r.labels.dtype == np.int64
    assert r.scores.dtype == np.float32 and r.bboxes.dtype == np.float32
    np.testing.assert_array_equal(r.bboxes, masks_to_boxes(r.masks))
    np.testing.assert_array_equal(r.bboxes[1], [2, 1, 6, 4])
    # explicit boxes are kept (converted to float32)
    r2 = InstanceResult(r.masks, r.labels, r.scores, np.ones((3, 4), np.float64))
    assert r2.bboxes.dtype == np.float32 and np.all(r2.bboxes == 1)
    # tensors are accepted
    r3 = InstanceResult(torch.from_numpy(r.masks), torch.arange(3), torch.tensor([0.9, 0.7, 0.5]))
    assert r3.labels.dtype == np.int64 and r3.scores.dtype == np.float32 and len(r3) == 3


@pytest.mark.parametrize('field', ['labels', 'scores', 'bboxes'])
def test_instance_result_length_mismatch(field):
    r = _res()
    kwargs = dict(masks=r.masks, labels=r.labels, scores=r.scores, bboxes=r.bboxes)
    kwargs[field] = kwargs[field][:2]
    with pytest.raises(ValueError, match='differ in length'):
        InstanceResult(**kwargs)


def test_instance_result_bad_mask_shape():
    with pytest.raises(ValueError, match=r'\(N, H, W\)'):
        InstanceResult(np.zeros((10, 12), bool), np.zeros(0), np.zeros(0))


def test_instance_result_indexing():
    r = _res(4)
    one = r[1]
    assert isinstance(one, InstanceResult) and len(one) == 1
    assert one.masks.shape == (1, 10, 12) and one.labels[0] == 1
    np.testing.assert_array_equal(one.bboxes[0], r.bboxes[1])
    np.testing.assert_array_equal(r[np.int64(2)].masks[0], r.masks[2])
    sl = r[1:3]
    assert len(sl) == 2 and list(sl.labels) == [1, 2]
    keep = r[r.scores > 0.6]
    assert len(keep) == int((r.scores > 0.6).sum()) and np.all(keep.scores > 0.6)
    picked = r[[3, 0]]
    assert list(picked.labels) == [3, 0]
    none = r[r.scores > 2]
    assert len(none) == 0 and none.masks.shape == (0, 10, 12) and none.bboxes.shape == (0, 4)


def test_instance_result_empty():
    e = InstanceResult.empty(7, 9)
    assert len(e) == 0 and e.image_size == (7, 9)
    assert e.masks.shape == (0, 7, 9) and e.masks.dtype == np.bool_
    assert e.labels.shape == (0,) and e.labels.dtype == np.int64
    assert e.scores.shape == (0,) and e.scores.dtype == np.float32
    assert e.bboxes.shape == (0, 4) and e.bboxes.dtype == np.float32


def test_inference_accepts_gray_and_bgra_arrays(golden_model):
    bgr = cv2.resize(cv2.imread(PUBLIC_JPG), (240, 160))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    ref = inference_detector(golden_model, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    for img in (gray, gray[:, :, None]):
        _same(inference_detector(golden_model, img), ref)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    bgra[..., 3] = 7
    _same(inference_detector(golden_model, bgra), inference_detector(golden_model, bgr))


@pytest.mark.parametrize('img, message', [
    (np.zeros((0, 10, 3), np.uint8), r'image array is empty \(shape \(0, 10, 3\)\)'),
    (np.zeros((10, 10, 2), np.uint8), r'expected \(H, W\) gray.*got shape \(10, 10, 2\)'),
    (np.full((10, 10, 3), 0.5, np.float32), r'float with values in \[0.5, 0.5\]: expected 0-255'),
    (np.zeros((10, 10, 3), np.uint16), 'dtype uint16'),
    (np.full((10, 10, 3), np.nan, np.float32), 'NaN'),
])
def test_inference_rejects_bad_arrays_clearly(golden_model, img, message):
    with pytest.raises(ValueError, match=message):
        inference_detector(golden_model, img)


def test_checkpoint_of_another_architecture_is_refused(golden_ckpt, caplog):
    """R18-light weights in the R50 config: most of the model would stay random."""
    from mmdet_solo.utils.checkpoint import CheckpointError
    r50 = os.path.join(ROOT, 'configs', 'solov2', 'solov2_r50_fpn_8gpu_1x.py')
    with pytest.raises(CheckpointError, match=r'fills only \d+% of SOLOv2.*at least 50% needed.*'
                                              r'--allow-partial'):
        init_detector(r50, golden_ckpt, device='cpu')
    with caplog.at_level(logging.WARNING):
        model = init_detector(r50, golden_ckpt, device='cpu', allow_partial=True)
    assert 'shape mismatch' in caplog.text and model is not None
