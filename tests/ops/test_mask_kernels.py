"""The compiled mask kernels give PyTorch's results: the paste bit for bit against two
F.interpolate calls, the scan against PyTorch ops; both can be turned off."""
import numpy as np
import pytest
import torch

from mmdet_solo.models.heads import postprocess
from mmdet_solo.models.heads.postprocess import (KernelSoftMasks, SoftMasks, paste_masks,
                                                 segm_postprocess)
from mmdet_solo.ops import mask_kernels

needs_paste = pytest.mark.skipif(
    mask_kernels.paste_variant() is None,
    reason='no compiled paste that reproduces F.interpolate here (extension missing, or '
           'this PyTorch build rounds otherwise: the PyTorch path is used)')
needs_scan = pytest.mark.skipif(not mask_kernels.compiled_scan_available('cpu'),
                                reason='the compiled extension is not built')


@pytest.fixture
def torch_kernels():
    mask_kernels.set_mask_kernels('torch')
    yield
    mask_kernels.set_mask_kernels('auto')


def _blobs(n, h, w, gen, value=0.9):
    """Masks that are zero but for a random box each (windows of every size and place)."""
    soft = torch.rand(n, h, w, generator=gen) * 0.3
    for i in range(n):
        y0 = int(torch.randint(0, h, (1,), generator=gen))
        x0 = int(torch.randint(0, w, (1,), generator=gen))
        y1 = y0 + int(torch.randint(1, h // 2 + 2, (1,), generator=gen))
        x1 = x0 + int(torch.randint(1, w // 2 + 2, (1,), generator=gen))
        soft[i, y0:y1, x0:x1] = value * torch.rand(soft[i, y0:y1, x0:x1].shape, generator=gen) \
            + (1 - value) / 2 + 0.3
    return soft.clamp(0, 1)


@needs_paste
@pytest.mark.parametrize('img_hw,out_hw', [((448, 597), (400, 600)),   # the usual: down, up
                                           ((448, 672), (900, 1350)),  # up
                                           ((420, 640), (420, 640)),   # no second resize
                                           ((448, 600), (448, 333))])  # one axis unchanged
@pytest.mark.parametrize('thr', [0.5, 0.45])
def test_compiled_paste_is_bitwise_the_interpolate_path(img_hw, out_hw, thr):
    gen = torch.Generator().manual_seed(sum(img_hw) + sum(out_hw))
    soft = torch.cat([torch.rand(3, 112, 168, generator=gen), _blobs(9, 112, 168, gen),
                      torch.zeros(1, 112, 168), torch.full((1, 112, 168), thr)])
    expect = mask_kernels.torch_resize(soft, img_hw, out_hw) > thr
    assert mask_kernels.compiled_paste_available(soft, out_hw)
    got = mask_kernels.compiled_paste(soft, img_hw, out_hw, thr)
    assert got.dtype == torch.bool and got.shape == expect.shape
    assert torch.equal(got, expect)


@needs_paste
def test_compiled_paste_float_values_match_interpolate():
    """The values themselves (the self-check's mode): every pixel, bit for bit."""
    soft = torch.rand(2, 40, 52, generator=torch.Generator().manual_seed(3))
    values = torch.ops.mmdet_solo.paste_masks(soft, 157, 205, 230, 301, 0.5,
                                              mask_kernels.paste_variant(), True)
    ref = mask_kernels.torch_resize(soft, (157, 205), (230, 301))
    assert torch.equal(values.view(torch.int32), ref.contiguous().view(torch.int32))
    # the other variants round differently somewhere (the check can tell them apart)
    others = [v for v in range(mask_kernels.NUM_VARIANTS) if v != mask_kernels.paste_variant()
              and (v >> 1 == 0 or torch.ops.mmdet_solo.paste_masks_has_fma())]
    assert any(not torch.equal(torch.ops.mmdet_solo.paste_masks(soft, 157, 205, 230, 301, 0.5,
                                                                v, True), ref) for v in others)


def test_small_outputs_and_other_inputs_keep_interpolate():
    soft = torch.rand(2, 8, 10)
    assert not mask_kernels.compiled_paste_available(soft, (100, 200))   # x4 is 32 x 40
    big = torch.rand(2, 30, 40)
    assert not mask_kernels.compiled_paste_available(big, (60, 60))
    assert not mask_kernels.compiled_paste_available(big.double(), (200, 200))
    assert not mask_kernels.compiled_paste_available(big[None], (200, 200))


@needs_paste
@pytest.mark.parametrize('encode', [False, True])
def test_paste_masks_same_with_and_without_kernels(encode):
    soft = _blobs(12, 60, 80, torch.Generator().manual_seed(1))
    labels, scores = np.arange(12), np.linspace(1, 0.2, 12).astype(np.float32)
    fast = paste_masks(soft, (230, 311), (345, 466), 0.5, labels, scores, encode=encode)
    mask_kernels.set_mask_kernels('torch')
    try:
        slow = paste_masks(soft, (230, 311), (345, 466), 0.5, labels, scores, encode=encode)
    finally:
        mask_kernels.set_mask_kernels('auto')
    np.testing.assert_array_equal(fast.masks, slow.masks)
    np.testing.assert_array_equal(fast.bboxes, slow.bboxes)


def test_unknown_backend_is_an_error(monkeypatch):
    with pytest.raises(ValueError, match="'auto' or 'torch'"):
        mask_kernels.set_mask_kernels('fast')
    monkeypatch.setattr(mask_kernels, '_backend', ['trch'])
    with pytest.raises(ValueError, match=r"MMDET_SOLO_MASK_KERNELS='trch'"):
        mask_kernels.compiled_scan_available('cpu')


@needs_scan
@pytest.mark.parametrize('thr', [0.5, 0.01])   # fixed-point sums, float64 sums
def test_compiled_scan_equals_torch_ops(thr):
    gen = torch.Generator().manual_seed(0)
    soft = torch.rand(37, 1000, generator=gen)
    soft[3] = 1.0                    # saturated probabilities
    soft[4, ::7] = float('nan')      # never above the threshold
    soft[5] = 5.0                    # not a probability: the float64 path for that row
    binary = torch.zeros(37, 1500, dtype=torch.bool)
    areas = torch.full((37,), 2, dtype=torch.int64)
    sums = torch.full((37,), 0.25, dtype=torch.float64)
    mask_kernels.compiled_scan(soft, thr, binary[:, 500:], areas, sums)
    on = soft > thr
    assert torch.equal(binary[:, 500:], on) and not binary[:, :500].any()
    assert torch.equal(areas, on.sum(1) + 2)
    expect = torch.where(on, soft, 0).double().sum(1) + 0.25
    torch.testing.assert_close(sums, expect, rtol=1e-15, atol=0)


def _kernel_masks(num, e=16, h=24, w=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    kernels = torch.randn(num, e, generator=gen)
    feats = torch.randn(e, h, w, generator=gen) * 0.3
    # the whole product, with at least MIN_GEMM_ROWS rows as KernelSoftMasks computes
    rows = torch.cat([kernels, kernels[:1].expand(max(0, postprocess.MIN_GEMM_ROWS - num), e)])
    full = (rows @ feats.flatten(1))[:num].sigmoid().view(-1, h, w)
    return KernelSoftMasks(kernels, feats), full


@pytest.mark.parametrize('num', [5, 40])   # fewer and more rows than MIN_GEMM_ROWS
def test_kernel_soft_masks_blocks_and_take_are_the_whole_product(num):
    """Blocks as post-processing makes them (>= SCAN_MIN_COLUMNS columns; BLAS may round
    tiny products otherwise) and the rows taken again have the whole product's bits."""
    masks, full = _kernel_masks(num, e=64, h=64, w=80)
    flat = full.flatten(1)
    step = postprocess.SCAN_MIN_COLUMNS
    for start in range(0, flat.shape[1], step):
        stop = min(start + step, flat.shape[1])
        assert torch.equal(masks.columns(start, stop), flat[:, start:stop])
    index = torch.tensor([3, 1])
    assert torch.equal(masks.take(index), full[index])


@pytest.mark.parametrize('kernels', ['auto', 'torch'])
def test_segm_postprocess_same_for_made_and_given_masks(monkeypatch, kernels):
    """Post-processing reads KernelSoftMasks (made block by block) and the (U, h, w) tensor
    of the same masks alike, with or without the compiled kernels."""
    monkeypatch.setattr(postprocess, 'SCAN_CHUNK_ELEMS', 1)
    monkeypatch.setattr(postprocess, 'SCAN_MIN_COLUMNS', 100)
    mask_kernels.set_mask_kernels(kernels)
    try:
        masks, full = _kernel_masks(60, seed=4)
        labels = torch.arange(80) % 3
        inds = torch.arange(80) % 60
        scores = torch.linspace(0.9, 0.2, 80)
        strides = torch.full((80,), 8.0)
        cfg = dict(mask_thr=0.5, nms_pre=50, update_thr=0.05, max_per_img=30)
        a = segm_postprocess(masks, labels, scores, strides, (90, 150), (120, 200), cfg,
                             mask_inds=inds)
        b = segm_postprocess(SoftMasks(full), labels, scores, strides, (90, 150), (120, 200),
                             cfg, mask_inds=inds)
        c = segm_postprocess(full, labels, scores, strides, (90, 150), (120, 200), cfg,
                             mask_inds=inds)
    finally:
        mask_kernels.set_mask_kernels('auto')
    assert len(a) > 5
    for other in (b, c):
        np.testing.assert_array_equal(a.masks, other.masks)
        np.testing.assert_array_equal(a.labels, other.labels)
        np.testing.assert_array_equal(a.scores, other.scores)


def test_scan_sums_are_exact_whatever_the_blocks(monkeypatch):
    """The soft sums are the exact sums rounded once: block sizes do not change a bit."""
    masks, full = _kernel_masks(30, h=50, w=60, seed=2)
    results = []
    for elems, cols in ((1, 64), (1, 1000), (2 ** 22, 1)):
        monkeypatch.setattr(postprocess, 'SCAN_CHUNK_ELEMS', elems)
        monkeypatch.setattr(postprocess, 'SCAN_MIN_COLUMNS', cols)
        results.append(postprocess._scan_masks(masks, 0.5))
    exact = torch.tensor([sum(float(v) for v in m.flatten() if v > 0.5) for m in full],
                         dtype=torch.float64).float()
    for binary, areas, sums in results:
        assert torch.equal(binary, full > 0.5)
        assert torch.equal(areas, (full > 0.5).flatten(1).sum(1).float())
        assert torch.equal(sums, exact)
