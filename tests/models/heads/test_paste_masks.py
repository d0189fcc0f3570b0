"""Chunked mask pasting equals one resize of all masks; the encoded path equals the dense one."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdet_solo.models.heads import postprocess
from mmdet_solo.models.heads.postprocess import paste_masks
from mmdet_solo.ops import mask_kernels
from mmdet_solo.structures import EncodedInstanceResult, InstanceResult


def _reference(soft, img_hw, out_hw, thr, rescale):
    """The original's single call over all masks."""
    pad_h, pad_w = soft.shape[-2] * 4, soft.shape[-1] * 4
    m = F.interpolate(soft[None], size=(pad_h, pad_w), mode='bilinear')[:, :, :img_hw[0], :img_hw[1]]
    if rescale:
        m = F.interpolate(m, size=out_hw, mode='bilinear')
    return (m[0] > thr).numpy()


@pytest.mark.parametrize('rescale', [True, False])
@pytest.mark.parametrize('budget', [1, 5000, 2 ** 25])
@pytest.mark.parametrize('out_hw', [(131, 177), (75, 101)])  # the second: no resize needed
def test_chunked_paste_equals_single_resize(monkeypatch, rescale, budget, out_hw):
    monkeypatch.setattr(postprocess, 'PASTE_CHUNK_ELEMS', budget)
    g = torch.Generator().manual_seed(0)
    soft = torch.rand(7, 20, 28, generator=g)
    img_hw = (75, 101)
    labels, scores = np.arange(7), np.linspace(1, 0.3, 7).astype(np.float32)
    res = paste_masks(soft, img_hw, out_hw, 0.5, labels, scores, rescale=rescale)
    expect = _reference(soft, img_hw, out_hw, 0.5, rescale)
    assert isinstance(res, InstanceResult)
    np.testing.assert_array_equal(res.masks, expect)
    enc = paste_masks(soft, img_hw, out_hw, 0.5, labels, scores, rescale=rescale, encode=True)
    assert isinstance(enc, EncodedInstanceResult)
    np.testing.assert_array_equal(enc.masks, expect)
    np.testing.assert_array_equal(enc.bboxes, res.bboxes)
    np.testing.assert_array_equal(enc.labels, res.labels)
    np.testing.assert_array_equal(enc.scores, res.scores)


def test_chunk_size_bounds_the_float_pixels_in_flight(monkeypatch):
    """Without the compiled paste (which makes no float images), F.interpolate gets a few
    masks at a time."""
    sizes = []
    real = F.interpolate

    def spy(x, *a, **k):
        sizes.append(x.shape[1])
        return real(x, *a, **k)

    monkeypatch.setattr(mask_kernels.F, 'interpolate', spy)
    monkeypatch.setattr(mask_kernels, '_backend', ['torch'])
    monkeypatch.setattr(postprocess, 'PASTE_CHUNK_ELEMS', 3 * (80 * 112 + 131 * 177))
    soft = torch.rand(8, 20, 28)
    paste_masks(soft, (75, 101), (131, 177), 0.5, np.zeros(8), np.ones(8, np.float32))
    assert max(sizes) == 3 and sum(sizes) == 2 * 8  # two resizes per chunk, 3 masks at most
