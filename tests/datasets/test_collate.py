"""Tests of ``collate``: padding to the batch size, lists, test-time (per-aug) batches."""
import numpy as np
import pytest
import torch

from mmdet_solo.datasets.collate import collate, collate_per_gpu


def _item(h, w, k, fill=1.0):
    masks = np.zeros((k, h, w), np.uint8)
    masks[:, :2, :3] = 1
    return {
        'img_metas': {'img_shape': (h, w, 3), 'pad_shape': (h, w, 3), 'scale_factor': 1.0},
        'img': torch.full((3, h, w), fill),
        'gt_bboxes': torch.zeros((k, 4)),
        'gt_labels': torch.arange(k),
        'gt_masks': masks,
    }


def test_collate_pads_images_and_masks_to_batch_max():
    batch = collate([_item(32, 64, 2), _item(64, 32, 0, fill=2.0)])
    img = batch['img']
    assert img.shape == (2, 3, 64, 64)
    assert torch.all(img[0, :, :32, :64] == 1) and torch.all(img[0, :, 32:] == 0)
    assert torch.all(img[1, :, :64, :32] == 2) and torch.all(img[1, :, :, 32:] == 0)
    assert [m.shape for m in batch['gt_masks']] == [(2, 64, 64), (0, 64, 64)]
    assert batch['gt_masks'][0].dtype == np.uint8
    assert batch['gt_masks'][0][:, :32, :64].sum() == 2 * 6 and batch['gt_masks'][0][:, 32:].sum() == 0
    # metas are per image and untouched (pad_shape keeps the per-image value, as the original)
    assert [m['pad_shape'] for m in batch['img_metas']] == [(32, 64, 3), (64, 32, 3)]
    assert [b.shape for b in batch['gt_bboxes']] == [(2, 4), (0, 4)]
    assert [lab.tolist() for lab in batch['gt_labels']] == [[0, 1], []]


def test_collate_can_keep_per_image_mask_size():
    batch = collate([_item(32, 64, 1), _item(64, 32, 1)], pad_masks_to_batch=False)
    assert [m.shape for m in batch['gt_masks']] == [(1, 32, 64), (1, 64, 32)]


def test_collate_same_size_is_a_plain_stack():
    a, b = _item(32, 32, 1), _item(32, 32, 1, fill=3.0)
    batch = collate([a, b])
    assert torch.equal(batch['img'], torch.stack([a['img'], b['img']]))
    assert batch['gt_masks'][0] is a['gt_masks']


def test_collate_test_time_samples_per_augmentation():
    def aug_item(h, w):
        one = _item(h, w, 0)
        two = _item(h * 2, w * 2, 0)
        return {'img': [one['img'], two['img']], 'img_metas': [one['img_metas'], two['img_metas']]}

    batch = collate([aug_item(32, 32), aug_item(32, 64)])
    assert [t.shape for t in batch['img']] == [(2, 3, 32, 64), (2, 3, 64, 128)]
    assert len(batch['img_metas']) == 2 and len(batch['img_metas'][0]) == 2
    assert batch['img_metas'][1][1]['img_shape'] == (64, 128, 3)


def test_collate_per_gpu_pads_each_chunk_separately():
    chunks = collate_per_gpu([_item(32, 32, 1), _item(64, 64, 1), _item(32, 96, 1)], samples_per_gpu=2)
    assert [c['img'].shape for c in chunks] == [(2, 3, 64, 64), (1, 3, 32, 96)]


def test_collate_errors():
    with pytest.raises(ValueError, match='empty'):
        collate([])
    b = _item(32, 32, 1)
    del b['gt_masks']
    with pytest.raises(KeyError, match='sample #1'):
        collate([_item(32, 32, 1), b])
    with pytest.raises(TypeError, match='sample #0'):
        collate([torch.zeros(3)])
