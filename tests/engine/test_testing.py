"""The one test loop (engine.testing): results leave the model RLE-encoded, batches are one
padded forward each, equal padded sizes give the batch-1 results, EvalHook uses the loop."""
import os
import types

import cv2
import numpy as np
import pytest

from coco_fixtures import tiny_coco  # noqa: F401
from golden_utils import CONFIGS, GOLDEN_DIR, ROOT, golden_state_dict

from mmdet_solo.apis import inference_detector, init_detector, single_gpu_test
from mmdet_solo.config import Config
from mmdet_solo.datasets import batch_size_of, build_dataset, build_test_dataloader
from mmdet_solo.engine import EvalHook
from mmdet_solo.models.heads import postprocess
from mmdet_solo.structures import EncodedInstanceResult, InstanceResult

GOLDEN = 'solov2_light_448_r18_fpn_8gpu_3x'
PUBLIC_JPG = os.path.join(GOLDEN_DIR, 'public.jpg')


def _small_test_scale(cfg):
    """The golden config's test pipeline at 384x256 (fast; the mechanisms do not depend on it)."""
    for pipeline in (cfg.data.test.pipeline, cfg.get('test_pipeline') or []):
        for step in pipeline:
            if step['type'] == 'MultiScaleFlipAug':
                step['img_scale'] = (384, 256)
    return cfg


@pytest.fixture(scope='module')
def model():
    cfg = _small_test_scale(Config.fromfile(os.path.join(ROOT, CONFIGS[GOLDEN])))
    # contiguous weights: with channels_last (the CPU default) convolutions round differently
    # for different batch sizes, and the batch-1 equality below holds only up to ~1e-3
    cfg.channels_last = False
    m = init_detector(cfg, None, device='cpu')
    m.load_state_dict(golden_state_dict(GOLDEN))
    return m


def _images():
    img = cv2.imread(PUBLIC_JPG)
    noisy = np.clip(img.astype(np.int16) + np.random.default_rng(0).integers(-20, 20, img.shape),
                    0, 255).astype(np.uint8)
    return [img, img[:, ::-1].copy(), noisy]


def test_batch_of_equal_padded_size_gives_batch_1_results(model):
    imgs = _images()
    one = inference_detector(model, imgs, batch_size=1)
    batched = inference_detector(model, imgs, batch_size=3)
    for a, b in zip(one, batched):
        assert len(a) > 10
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
        assert (a.masks != b.masks).mean() < 1e-6  # the same masks (a pixel at most may tie)
        assert a.masks.shape == b.masks.shape


def test_batch_of_mixed_sizes_gives_one_result_per_image(model):
    img = cv2.imread(PUBLIC_JPG)
    small = cv2.resize(img, (300, 260))
    out = inference_detector(model, [img, small], batch_size=2)
    assert [r.masks.shape[1:] for r in out] == [(400, 600), (260, 300)]
    alone = inference_detector(model, small)
    # padded to the larger input, the small image's grid moves: close, not equal
    assert abs(len(out[1]) - len(alone)) <= max(3, len(alone) // 5)


def test_inference_batch_size_defaults_to_the_config_and_is_checked(model, monkeypatch):
    calls = []

    def spy(self, img, img_metas, **kw):  # counts the images of each forward
        n = len(img[0]) if isinstance(img, list) else len(img)
        calls.append(n)
        return [None] * n

    monkeypatch.setattr(type(model), 'forward', spy)
    imgs = _images()
    inference_detector(model, imgs)
    assert calls == [1, 1, 1]
    calls.clear()
    monkeypatch.setitem(model.cfg.data.test, 'samples_per_gpu', 2)
    inference_detector(model, imgs)
    assert calls == [2, 1]
    with pytest.raises(ValueError, match='batch_size must be a positive int'):
        inference_detector(model, imgs, batch_size=0)


def test_loader_batch_size_keys():
    assert batch_size_of({}, 'data.test') is None
    assert batch_size_of({'samples_per_gpu': 4}, 'data.test') == 4
    assert batch_size_of({'imgs_per_gpu': 4, 'samples_per_gpu': 4}, 'data.test') == 4
    with pytest.raises(ValueError, match='imgs_per_gpu=2 and samples_per_gpu=4 disagree'):
        batch_size_of({'imgs_per_gpu': 2, 'samples_per_gpu': 4}, 'data.val')
    with pytest.raises(ValueError, match=r'data.val.samples_per_gpu must be a positive int'):
        batch_size_of({'samples_per_gpu': 0}, 'data.val')


def _test_set(tiny_coco, model, samples_per_gpu):
    cfg = model.cfg
    data = dict(workers_per_gpu=0, test=dict(
        type='CocoDataset', ann_file=tiny_coco['ann_file'], img_prefix=tiny_coco['img_prefix'],
        classes=tiny_coco['classes'], pipeline=cfg.data.test.pipeline, test_mode=True,
        samples_per_gpu=samples_per_gpu))
    dataset = build_dataset(data['test'])
    return dataset, build_test_dataloader(dataset, data, 'test')


def test_loop_encodes_masks_inside_the_model(tiny_coco, model, monkeypatch):
    flags = []
    real = postprocess.paste_masks

    def spy(*args, **kwargs):
        flags.append(kwargs.get('encode'))
        return real(*args, **kwargs)

    monkeypatch.setattr(postprocess, 'paste_masks', spy)
    dataset, loader = _test_set(tiny_coco, model, samples_per_gpu=2)
    assert loader.batch_size == 2
    results = single_gpu_test(model, loader, progress=False)
    assert len(results) == len(dataset)
    assert all(isinstance(r, EncodedInstanceResult) for r in results)
    assert flags and all(flags)  # never a dense (N, H, W) array for the whole image
    assert sum(len(r) for r in results) > 0
    for r, i in zip(results, range(len(dataset))):
        info = dataset.img_infos[i]
        assert r.image_size == (info['height'], info['width'])


def test_eval_hook_evaluates_encoded_results(tiny_coco, model):
    dataset, loader = _test_set(tiny_coco, model, samples_per_gpu=3)
    seen = {}

    def evaluate(results, metric, logger=None, **kw):
        seen['results'] = results
        return {'segm_mAP': 0.5}

    dataset.evaluate = evaluate
    hook = EvalHook(loader, interval=1)
    model.train()
    trainer = types.SimpleNamespace(epoch=1, max_epochs=1, model=model, rank=0,
                                    logger=types.SimpleNamespace(info=lambda m: None),
                                    eval_results={}, hooks=[hook])
    hook.after_epoch(trainer)
    assert model.training  # put back in training mode
    model.eval()
    assert trainer.eval_results == {'segm_mAP': 0.5}
    assert len(seen['results']) == len(dataset)
    assert all(isinstance(r, EncodedInstanceResult) for r in seen['results'])


def test_encoded_result_plain_data_round_trip():
    masks = np.zeros((2, 5, 7), bool)
    masks[0, 1:3, 2:5] = True
    res = InstanceResult(masks, [1, 2], [0.9, 0.4])
    enc = EncodedInstanceResult.from_result(res)
    back = EncodedInstanceResult.from_dict(enc.to_dict())
    assert np.array_equal(back.masks, masks) and np.array_equal(back.bboxes, res.bboxes)
    assert back.labels.tolist() == [1, 2] and np.array_equal(back.scores, res.scores)
    assert EncodedInstanceResult.from_result(enc) is enc
