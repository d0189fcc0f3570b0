"""ONNX export with post-processing in the graph (mmdet_solo.deploy, tools/deployment/
pytorch2onnx.py, tools/test_ins.py --backend onnxruntime).

* The graph's static post-processing gives the PyTorch path's results exactly (eager, every
  head variant), and the candidate cap is what changes them when it bites.
* One export of a tiny SOLOv2-light (shapes config, seeded random weights with spread head
  outputs) by the tool, dynamic batch and size, run by ONNX Runtime: the same detections as
  PyTorch at other sizes and in a mixed-size batch, the same results through
  ``inference_detector``, and the same AP and per-image results with test_ins.py.
* Deformable convolutions export as ONNX DeformConv and ONNX Runtime runs them.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pickle

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from mmdet_solo.apis import inference_detector, init_detector
from mmdet_solo.deploy import (DEFAULT_MAX_CANDIDATES, init_onnx_detector, results_from_outputs,
                               static_postprocess)
from mmdet_solo.deploy.compare import compare_all, spread_head_outputs
from mmdet_solo.models.heads.utils import points_nms

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES_V2 = os.path.join(ROOT, 'configs', 'shapes', 'solov2_light_r18_shapes.py')
SHAPES_SOLO = os.path.join(ROOT, 'configs', 'shapes', 'decoupled_solo_light_r18_shapes.py')


def _load_tool(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(config, options=None, seed=0):
    torch.manual_seed(seed)
    model = init_detector(config, None, device='cpu',
                          cfg_options=dict(channels_last=False, **(options or {})))
    spread_head_outputs(model, seed)
    return model


def _batch(sizes, seed=0):
    """Smooth random images of ``sizes`` zero-padded to one batch (multiples of 32)."""
    gen = torch.Generator().manual_seed(seed)
    ph = max(-(-h // 32) * 32 for h, _ in sizes)
    pw = max(-(-w // 32) * 32 for _, w in sizes)
    img = torch.zeros(len(sizes), 3, ph, pw)
    metas = []
    for i, (h, w) in enumerate(sizes):
        coarse = torch.randn(1, 3, h // 16, w // 16, generator=gen) * 1.5
        img[i, :, :h, :w] = torch.nn.functional.interpolate(coarse, size=(h, w),
                                                            mode='bilinear')[0]
        metas.append(dict(img_shape=(h, w, 3), ori_shape=(h * 3 // 2, w * 3 // 2, 3)))
    return img, metas


def _assert_same(ref, got):
    assert len(ref) == len(got)
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g.labels, r.labels)
        # batched sums may add in another order than the per-image ones: ~1 ulp
        np.testing.assert_allclose(g.scores, r.scores, rtol=1e-6)
        np.testing.assert_array_equal(g.masks, r.masks)


# ----------------------------------------------------------------- eager, every head variant
@pytest.mark.parametrize('config,head', [(SHAPES_V2, 'SOLOv2Head'), (SHAPES_SOLO, 'SOLOHead'),
                                         (SHAPES_SOLO, 'DecoupledSOLOHead'),
                                         (SHAPES_SOLO, 'DecoupledSOLOLightHead')])
def test_static_postprocess_is_the_pytorch_path(config, head):
    model = _model(config, {'model.bbox_head.type': head, 'test_cfg.score_thr': 0.6,
                            'test_cfg.nms_pre': 60, 'test_cfg.max_per_img': 30})
    img, metas = _batch([(90, 120), (64, 100)])
    with torch.no_grad():
        outputs = model.forward_heads(model.extract_feat(img))
        ref = model.bbox_head.predict(outputs, metas, model.test_cfg)
        out = [o.numpy() for o in static_postprocess(model.bbox_head, outputs, model.test_cfg,
                                                     DEFAULT_MAX_CANDIDATES)]
    assert 0 < len(ref[0]) <= 30 and len(ref[1]) > 0, 'the test needs detections'
    assert out[2].shape == (2, 30, img.shape[2] // 4, img.shape[3] // 4)
    assert (out[1][0, len(ref[0]):] == -1).all() and list(out[3]) == [len(r) for r in ref]
    _assert_same(ref, results_from_outputs(*out, metas, model.test_cfg['mask_thr']))


def test_the_candidate_cap_changes_results_only_when_it_bites():
    model = _model(SHAPES_V2, {'test_cfg.score_thr': 0.6})
    img, metas = _batch([(96, 128)])
    cfg = model.test_cfg
    with torch.no_grad():
        outputs = model.forward_heads(model.extract_feat(img))
        ref = model.bbox_head.predict(outputs, metas, cfg)
        passing = int(sum((points_nms(p.sigmoid()) > 0.6).sum() for p in outputs.cate_preds))
        enough = static_postprocess(model.bbox_head, outputs, cfg, passing)
        capped = static_postprocess(model.bbox_head, outputs, cfg, passing // 4)
    _assert_same(ref, results_from_outputs(*[o.numpy() for o in enough], metas, 0.5))
    got = results_from_outputs(*[o.numpy() for o in capped], metas, 0.5)
    assert not (len(got[0]) == len(ref[0]) and np.allclose(got[0].scores, ref[0].scores))


# -------------------------------------------------------------------------- one ONNX export
@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """Tiny shapes set, a seeded random checkpoint, the tool's dynamic export (+ --verify)."""
    from mmdet_solo.datasets.shapes import make_shapes_dataset
    from mmdet_solo.utils.checkpoint import save_checkpoint
    root = tmp_path_factory.mktemp('deploy')
    make_shapes_dataset(str(root / 'shapes'), num_train=0, num_val=3, seed=5)
    model = _model(SHAPES_V2)
    config = str(root / 'tiny.py')
    ann_file = str(root / 'shapes' / 'annotations' / 'instances_val.json')
    img_prefix = str(root / 'shapes' / 'val') + '/'
    with open(config, 'w') as f:
        f.write(f"_base_ = {SHAPES_V2!r}\n"
                "test_cfg = dict(nms_pre=100, score_thr=0.6, mask_thr=0.5, update_thr=0.05, "
                "max_per_img=40)\n"
                f"data = dict(imgs_per_gpu=3, test=dict(ann_file={ann_file!r}, "
                f"img_prefix={img_prefix!r}))\n")
    ckpt = str(root / 'ckpt.pth')
    save_checkpoint(model, ckpt, meta={'CLASSES': model.CLASSES})
    onnx_file = str(root / 'model.onnx')
    tool = _load_tool(os.path.join(ROOT, 'tools', 'deployment', 'pytorch2onnx.py'))
    assert tool.main([config, ckpt, '--output-file', onnx_file, '--shape', '96', '128',
                      '--dynamic-export', '--verify']) == 0
    return dict(root=root, config=config, ckpt=ckpt, onnx=onnx_file,
                model=init_detector(config, ckpt, device='cpu',
                                    cfg_options={'channels_last': False}))


@pytest.mark.parametrize('sizes', [[(160, 192)], [(64, 250)], [(100, 150), (190, 90)]])
def test_onnx_runtime_gives_the_pytorch_detections(exported, sizes):
    runner = init_onnx_detector(exported['config'], exported['onnx'])
    img, metas = _batch(sizes, seed=len(sizes))
    with torch.no_grad():
        ref = exported['model'].simple_test(img, metas)
    got = runner(img, metas)
    ok, comps = compare_all(ref, got)
    assert ok and all(c.num_ref > 0 for c in comps), [str(c) for c in comps]
    assert all(c.matched == c.num_ref == c.num_got for c in comps), [str(c) for c in comps]


def test_inference_detector_runs_the_onnx_model(exported):
    runner = init_onnx_detector(exported['config'], exported['onnx'])
    assert runner.CLASSES == exported['model'].CLASSES
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (150, 200, 3), dtype=np.uint8),
            rng.integers(0, 255, (220, 180, 3), dtype=np.uint8)]
    refs = inference_detector(exported['model'], imgs, batch_size=2)
    gots = inference_detector(runner, imgs, batch_size=2)
    ok, comps = compare_all(refs, gots)
    assert ok, [str(c) for c in comps]
    assert gots[0].masks.shape[1:] == (150, 200)


def test_test_ins_onnxruntime_gives_the_checkpoint_results(exported):
    tool = _load_tool(os.path.join(ROOT, 'tools', 'test_ins.py'))
    outs = {}
    for backend, model_file in (('pytorch', exported['ckpt']), ('onnxruntime', exported['onnx'])):
        out = str(exported['root'] / f'{backend}.pkl')
        assert tool.main([exported['config'], model_file, '--backend', backend, '--eval', 'segm',
                          '--out', out, '--cfg-options', 'channels_last=False']) == 0
        with open(out, 'rb') as f:
            results = pickle.load(f)['results']
        with open(out[:-4] + '.eval.json') as f:
            outs[backend] = (results, json.load(f)['metrics']['segm_mAP'])
    (ref, ap_ref), (got, ap_got) = outs['pytorch'], outs['onnxruntime']
    assert abs(ap_ref - ap_got) <= 1e-3
    assert sum(len(r['labels']) for r in ref) > 0
    for r, g in zip(ref, got):   # (a mask pixel at mask_thr may flip: scores within 1e-3)
        np.testing.assert_array_equal(g['labels'], r['labels'])
        np.testing.assert_allclose(g['scores'], r['scores'], atol=1e-3)
        ious = mask_utils.iou(g['masks'], r['masks'], [0] * len(r['masks']))
        assert (np.diag(ious) >= 0.99).all()


def test_a_changed_test_cfg_is_refused(exported):
    with pytest.raises(ValueError, match='score_thr: config 0.3 vs exported 0.6'):
        init_onnx_detector(exported['config'], exported['onnx'],
                           cfg_options={'test_cfg.score_thr': 0.3})


def test_export_refuses_a_shape_not_multiple_of_32(tmp_path, capsys):
    tool = _load_tool(os.path.join(ROOT, 'tools', 'deployment', 'pytorch2onnx.py'))
    with pytest.raises(SystemExit):
        tool.main([SHAPES_V2, 'none', '--output-file', str(tmp_path / 'm.onnx'),
                   '--shape', '100', '128'])
    assert 'multiples of 32' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'm.onnx')


# ------------------------------------------------------------------ deformable convolutions
def test_deform_convs_export_as_onnx_deform_conv(tmp_path):
    import onnx
    import onnxruntime as ort

    from mmdet_solo.deploy.deform_conv import deform_conv_translation
    from mmdet_solo.models.layers.deform_conv import DeformConvPack, ModulatedDeformConvPack
    torch.manual_seed(0)
    layers = torch.nn.Sequential(DeformConvPack(4, 6, 3, padding=1),
                                 ModulatedDeformConvPack(6, 5, 3, padding=1)).eval()
    with torch.no_grad():   # non-zero offsets, so the sampling is really deformed
        for layer in layers:
            layer.conv_offset.weight.normal_(0, 0.3)
            layer.conv_offset.bias.normal_(0, 0.5)
    x = torch.randn(2, 4, 16, 24)
    program = torch.onnx.export(layers, (x,), dynamo=True, opset_version=19,
                                custom_translation_table=deform_conv_translation(),
                                dynamic_shapes=({0: torch.export.Dim('b', min=1, max=4)},))
    assert [n.op_type for n in program.model_proto.graph.node].count('DeformConv') == 2
    path = str(tmp_path / 'dcn.onnx')
    onnx.save(program.model_proto, path)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    x1 = torch.randn(1, 4, 16, 24)
    with torch.no_grad():
        expected = layers(x1).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x1.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)
