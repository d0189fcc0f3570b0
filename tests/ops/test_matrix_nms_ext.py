"""The compiled Matrix NMS operator against the PyTorch reference, plus dispatch and compile/export.

Exactness: on binary masks the decay factors (the output for scores of 1) must be bit-identical
to the reference's; decayed scores are compared at 1e-6.
"""
import importlib
import os
import subprocess
import sys
import warnings

import pytest
import torch

from mmdet_solo.ops import _ext_loader, matrix_nms, matrix_nms_torch, set_matrix_nms_backend

mnms = importlib.import_module('mmdet_solo.ops.matrix_nms')  # the module (the package exports the function)

HAS_EXT = _ext_loader.load()
HAS_CUDA_KERNEL = HAS_EXT and torch.cuda.is_available() and _ext_loader.has_kernel('cuda')
needs_ext = pytest.mark.skipif(not HAS_EXT, reason=f'extension not built: {_ext_loader.load_error()}')
DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not HAS_CUDA_KERNEL, reason='needs a GPU and the CUDA kernel'))]


def ext_op(*args, **kwargs):
    return torch.ops.mmdet_solo.matrix_nms(*args, **kwargs)


def random_case(n, h=23, w=37, n_classes=3, seed=0, zero_area=0, dup=0, dtype=torch.bool,
                device='cpu'):
    """Rectangles and blobs of varied size, many label ties, some duplicates and empty masks."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    for k in range(n):
        y0, x0 = torch.randint(0, h, (2,), generator=g).tolist()[0], torch.randint(0, w, (1,), generator=g).item()
        y1 = min(h, y0 + 1 + torch.randint(0, h, (1,), generator=g).item())
        x1 = min(w, x0 + 1 + torch.randint(0, w, (1,), generator=g).item())
        masks[k, y0:y1, x0:x1] = True
        if k % 3 == 0:  # ragged: drop random pixels
            masks[k] &= torch.rand(h, w, generator=g) > 0.3
    for k in range(min(dup, n - 1)):
        src = torch.randint(0, n - 1, (1,), generator=g).item()
        masks[min(n - 1, src + 1 + k)] = masks[src]
    if zero_area:
        masks[torch.randperm(n, generator=g)[:zero_area]] = False
    labels = torch.randint(0, n_classes, (n,), generator=g)
    scores = torch.sort(torch.rand(n, generator=g), descending=True).values
    return masks.to(dtype).to(device), labels.to(device), scores.to(device)


def assert_same(masks, labels, scores, kernel='gaussian', sigma=2.0, sum_masks=None):
    ones = torch.ones_like(scores, dtype=torch.float32)
    d_ext = ext_op(masks, labels, ones, kernel, sigma, sum_masks)
    d_ref = matrix_nms_torch(masks, labels, ones, kernel, sigma, sum_masks)
    assert d_ext.dtype == d_ref.dtype and d_ext.device == d_ref.device
    mismatch = (d_ext != d_ref).nonzero().flatten().tolist()
    assert torch.equal(d_ext, d_ref), f'decay differs at {mismatch[:10]}: ' \
        f'{d_ext[mismatch[:5]].tolist()} vs {d_ref[mismatch[:5]].tolist()}'
    out = ext_op(masks, labels, scores, kernel, sigma, sum_masks)
    ref = matrix_nms_torch(masks, labels, scores, kernel, sigma, sum_masks)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    assert torch.isfinite(out).all()


@needs_ext
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('kernel', ['gaussian', 'linear'])
@pytest.mark.parametrize('n,seed', [(1, 0), (2, 1), (2, 2), (7, 3), (64, 4), (65, 5), (150, 6)])
def test_random_cases_match_reference(device, kernel, n, seed):
    masks, labels, scores = random_case(n, seed=seed, zero_area=n // 5, dup=n // 6,
                                        n_classes=1 + seed % 3, device=device)
    assert_same(masks, labels, scores, kernel)
    # the areas given by the caller are honoured exactly
    assert_same(masks, labels, scores, kernel, sum_masks=masks.sum((1, 2)).float())


@needs_ext
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('kernel', ['gaussian', 'linear'])
def test_n500_at_quarter_resolution(device, kernel):
    masks, labels, scores = random_case(500, h=50, w=76, n_classes=4, seed=7, zero_area=20,
                                        dup=30, device=device)
    assert_same(masks, labels, scores, kernel, sigma=2.0)


@needs_ext
@pytest.mark.parametrize('device', DEVICES)
def test_sigmas_and_odd_sum_masks(device):
    masks, labels, scores = random_case(40, seed=11, n_classes=2, dup=5, device=device)
    for sigma in (0.5, 2.0, 3.7, 0.0):
        assert_same(masks, labels, scores, 'gaussian', sigma)
    # caller-given areas that are not the true counts (scaled, zero, off by fractions)
    true = masks.sum((1, 2)).float()
    for sm in (true * 1.5, true + 0.25, torch.zeros_like(true), true.double()):
        for kernel in ('gaussian', 'linear'):
            assert_same(masks, labels, scores, kernel, sum_masks=sm)


@needs_ext
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.bool, torch.uint8, torch.float32, torch.float16,
                                   torch.bfloat16, torch.float64])
def test_mask_dtypes(device, dtype):
    masks, labels, scores = random_case(30, h=9, w=70, seed=12, dtype=dtype, device=device)
    assert_same(masks, labels, scores)
    ref = ext_op(masks.bool(), labels, scores, 'gaussian', 2.0, None)
    torch.testing.assert_close(ext_op(masks, labels, scores, 'gaussian', 2.0, None), ref,
                               rtol=0, atol=0)


@needs_ext
@pytest.mark.parametrize('device', DEVICES)
def test_label_and_score_dtypes(device):
    masks, labels, scores = random_case(25, seed=13, device=device)
    for lab in (labels.int(), labels.to(torch.int16), labels.to(torch.uint8)):
        assert_same(masks, lab, scores)
    for sc in (scores.double(), scores.half()):
        out = ext_op(masks, labels, sc, 'gaussian', 2.0, None)
        assert out.dtype == sc.dtype
        torch.testing.assert_close(out, matrix_nms_torch(masks, labels, sc), rtol=0, atol=0)


@needs_ext
@pytest.mark.parametrize('device', DEVICES)
def test_empty_zero_area_and_single(device):
    out = ext_op(torch.zeros(0, 5, 5, dtype=torch.bool, device=device),
                 torch.zeros(0, dtype=torch.long, device=device),
                 torch.zeros(0, device=device), 'gaussian', 2.0, None)
    assert out.shape == (0,) and out.dtype == torch.float32 and out.device.type == device
    # all masks of zero area (also H*W == 0): nothing decays, no NaN
    for shape in ((4, 6, 6), (4, 0, 3)):
        masks = torch.zeros(shape, dtype=torch.bool, device=device)
        scores = torch.tensor([0.9, 0.8, 0.7, 0.6], device=device)
        labels = torch.zeros(4, dtype=torch.long, device=device)
        for kernel in ('gaussian', 'linear'):
            out = ext_op(masks, labels, scores, kernel, 2.0, None)
            assert torch.equal(out, scores)
            assert_same(masks, labels, scores, kernel)
    one = ext_op(torch.ones(1, 4, 4, dtype=torch.bool, device=device),
                 torch.zeros(1, dtype=torch.long, device=device),
                 torch.tensor([0.5], device=device), 'gaussian', 2.0, None)
    assert one.tolist() == [0.5]


@needs_ext
@pytest.mark.parametrize('device', DEVICES)
def test_mask_sizes_around_word_boundaries(device):
    for h, w in ((1, 1), (1, 63), (1, 64), (1, 65), (2, 32), (3, 43), (8, 8), (5, 129)):
        masks, labels, scores = random_case(12, h=h, w=w, seed=h * 100 + w, n_classes=2,
                                            device=device)
        for kernel in ('gaussian', 'linear'):
            assert_same(masks, labels, scores, kernel)


@needs_ext
@pytest.mark.parametrize('device', DEVICES)
def test_non_contiguous_inputs(device):
    masks, labels, scores = random_case(20, h=30, w=40, seed=21, device=device)
    m = masks.transpose(1, 2)                         # (N, W, H) view
    assert_same(m, labels, scores)
    assert_same(masks[::2], labels[::2], scores[::2])


@needs_ext
def test_input_errors():
    masks, labels, scores = random_case(4, seed=0)
    with pytest.raises(ValueError, match='kernel'):
        ext_op(masks, labels, scores, 'gauss', 2.0, None)
    with pytest.raises(ValueError, match=r'\(N, H, W\)'):
        ext_op(masks[:, 0], labels, scores, 'gaussian', 2.0, None)
    with pytest.raises(ValueError, match='cate_labels'):
        ext_op(masks, labels[:3], scores, 'gaussian', 2.0, None)
    with pytest.raises(ValueError, match='sum_masks'):
        ext_op(masks, labels, scores, 'gaussian', 2.0, torch.ones(3))
    with pytest.raises(TypeError, match='floating'):
        ext_op(masks, labels, torch.tensor([3, 2, 1, 0]), 'gaussian', 2.0, None)
    with pytest.raises(TypeError, match='seg_masks'):
        ext_op(masks.int(), labels, scores, 'gaussian', 2.0, None)
    with pytest.raises(TypeError, match='cate_labels'):
        ext_op(masks, labels.float(), scores, 'gaussian', 2.0, None)
    with pytest.raises(ValueError, match='binary'):
        ext_op(masks.float() * 0.5, labels, scores, 'gaussian', 2.0, None)
    with pytest.raises(ValueError, match='binary'):
        ext_op(masks.to(torch.uint8) * 3, labels, scores, 'gaussian', 2.0, None)
    with pytest.raises(ValueError, match='binary'):
        ext_op(torch.full((4, 3, 3), float('nan')), labels, scores, 'gaussian', 2.0, None)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match='device|cuda'):
            ext_op(masks, labels.cuda(), scores, 'gaussian', 2.0, None)


def test_device_mismatch_via_dispatcher():
    masks, labels, scores = random_case(4, seed=0)
    meta_labels = labels.to('meta')
    with pytest.raises(ValueError, match='is on meta'):
        matrix_nms(masks, meta_labels, scores)


# ------------------------------------------------------------------------------------------------
# dispatch

@pytest.fixture
def backend():
    saved = mnms._backend[0]
    yield set_matrix_nms_backend
    mnms._backend[0] = saved


@needs_ext
def test_dispatcher_uses_ext_and_honours_forcing(backend, monkeypatch):
    masks, labels, scores = random_case(30, seed=3)
    calls = []
    real = mnms.matrix_nms_torch
    monkeypatch.setattr(mnms, 'matrix_nms_torch', lambda *a, **k: calls.append(1) or real(*a, **k))
    backend('auto')
    out = matrix_nms(masks, labels, scores)
    assert calls == []
    backend('torch')
    ref = matrix_nms(masks, labels, scores)
    assert calls == [1]
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    backend('ext')
    with pytest.raises(RuntimeError, match='ext was requested'):
        matrix_nms(masks.int(), labels, scores)        # int masks: only the reference takes them
    backend('auto')
    torch.testing.assert_close(matrix_nms(masks.int(), labels, scores), ref)   # falls back quietly
    with pytest.raises(ValueError, match='must be one of'):
        backend('fast')


@needs_ext
def test_dispatcher_keeps_gradients_to_scores():
    masks, labels, scores = random_case(20, seed=4)
    s1 = scores.clone().requires_grad_()
    s2 = scores.clone().requires_grad_()
    matrix_nms(masks, labels, s1).sum().backward()
    matrix_nms_torch(masks, labels, s2).sum().backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=0, atol=0)


def test_missing_extension_warns_once_and_falls_back(backend, monkeypatch):
    masks, labels, scores = random_case(10, seed=5)
    monkeypatch.setattr(mnms, '_ext_loaded', False)
    monkeypatch.setattr(mnms, '_warned', [False])
    monkeypatch.setattr(_ext_loader, '_error', 'ImportError: simulated')
    backend('auto')
    with pytest.warns(UserWarning, match='PyTorch reference') as rec:
        out = matrix_nms(masks, labels, scores)
    assert len(rec) == 1
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        matrix_nms(masks, labels, scores)           # no second warning
    torch.testing.assert_close(out, matrix_nms_torch(masks, labels, scores))
    backend('ext')
    with pytest.raises(RuntimeError, match='simulated'):
        matrix_nms(masks, labels, scores)


def test_env_var_and_cli():
    env = dict(os.environ, MMDET_SOLO_MATRIX_NMS='torch')
    code = 'import mmdet_solo.ops as o; print(o.get_matrix_nms_backend())'
    res = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip() == 'torch'
    res = subprocess.run([sys.executable, '-m', 'mmdet_solo.ops'], capture_output=True, text=True,
                         check=True)
    assert 'matrix_nms backends' in res.stdout and 'torch (PyTorch reference' in res.stdout
    assert ('cpu kernel: yes' in res.stdout) == HAS_EXT


# ------------------------------------------------------------------------------------------------
# torch.compile and torch.export

class _NMSModule(torch.nn.Module):
    def forward(self, masks, labels, scores, sum_masks):
        return matrix_nms(masks, labels, scores, kernel='gaussian', sigma=2.0, sum_masks=sum_masks)


@needs_ext
def test_opcheck():
    masks, labels, scores = random_case(12, seed=8)
    torch.library.opcheck(torch.ops.mmdet_solo.matrix_nms.default,
                          (masks, labels, scores, 'gaussian', 2.0, masks.sum((1, 2)).float()),
                          test_utils=('test_schema', 'test_faketensor'))


@needs_ext
def test_torch_compile(backend):
    backend('ext')
    masks, labels, scores = random_case(16, seed=9)
    sm = masks.sum((1, 2)).float()
    fn = torch.compile(_NMSModule(), backend='eager', fullgraph=True)
    torch.testing.assert_close(fn(masks, labels, scores, sm),
                               matrix_nms_torch(masks, labels, scores, sum_masks=sm),
                               rtol=1e-6, atol=1e-6)


@needs_ext
def test_torch_export(backend):
    backend('ext')
    masks, labels, scores = random_case(16, seed=10)
    sm = masks.sum((1, 2)).float()
    ep = torch.export.export(_NMSModule(), (masks, labels, scores, sm))
    targets = [str(node.target) for node in ep.graph.nodes if node.op == 'call_function']
    assert any('mmdet_solo.matrix_nms' in t for t in targets), targets
    masks2, labels2, scores2 = random_case(16, seed=11)
    sm2 = masks2.sum((1, 2)).float()
    torch.testing.assert_close(ep.module()(masks2, labels2, scores2, sm2),
                               matrix_nms_torch(masks2, labels2, scores2, sum_masks=sm2),
                               rtol=1e-6, atol=1e-6)
