"""GroupSampler, DistributedGroupSampler and DistributedSampler."""
from collections import Counter

import numpy as np
import pytest

from mmdet_solo.datasets import DistributedGroupSampler, DistributedSampler, GroupSampler


class FlagDataset:
    def __init__(self, flag):
        self.flag = np.asarray(flag, dtype=np.uint8)

    def __len__(self):
        return len(self.flag)


DS = FlagDataset([0] * 7 + [1] * 12)  # 7 portrait, 12 landscape


def _batches(order, spg):
    assert len(order) % spg == 0
    return [order[i:i + spg] for i in range(0, len(order), spg)]


@pytest.mark.parametrize('spg', [1, 2, 3, 4])
def test_group_sampler_purity_and_padding(spg):
    s = GroupSampler(DS, spg, seed=1)
    order = list(s)
    expect = sum(-(-n // spg) * spg for n in (7, 12))
    assert len(order) == len(s) == expect
    for b in _batches(order, spg):
        assert len({int(DS.flag[i]) for i in b}) == 1
    assert set(order) == set(range(len(DS)))  # padding only repeats, every index present
    counts = Counter(order)
    assert sum(c - 1 for c in counts.values()) == expect - len(DS)


def test_group_sampler_deterministic_per_epoch():
    a, b = GroupSampler(DS, 2, seed=5), GroupSampler(DS, 2, seed=5)
    e0 = list(a)
    assert list(a) == e0  # same epoch → same order
    a.set_epoch(1)
    e1 = list(a)
    assert e1 != e0
    b.set_epoch(1)  # a "resumed" sampler at epoch 1
    assert list(b) == e1
    np.random.seed(0)  # the global numpy state plays no role
    b.set_epoch(0)
    assert list(b) == e0
    assert list(GroupSampler(DS, 2, seed=6)) != e0


def test_group_sampler_without_flag_is_one_group():
    class Plain:
        def __len__(self):
            return 5
    order = list(GroupSampler(Plain(), 2))
    assert len(order) == 6 and set(order) == set(range(5))


@pytest.mark.parametrize('spg,world', [(1, 2), (2, 2), (2, 3), (3, 4)])
def test_distributed_group_sampler_split(spg, world):
    samplers = [DistributedGroupSampler(DS, spg, world, r, seed=2) for r in range(world)]
    orders = [list(s) for s in samplers]
    lengths = {len(o) for o in orders}
    assert lengths == {samplers[0].num_samples}  # every rank the same number of samples
    full = [i for o in orders for i in o]
    assert len(full) == samplers[0].total_size
    assert set(full) == set(range(len(DS)))  # every index covered
    for o in orders:
        for b in _batches(o, spg):
            assert len({int(DS.flag[i]) for i in b}) == 1
    # padding repeats each group's shuffled list: counts within a group differ by <= 1
    counts = Counter(full)
    for g in (0, 1):
        c = [counts[i] for i in np.flatnonzero(DS.flag == g)]
        assert max(c) - min(c) <= 1


def test_distributed_group_sampler_epochs_and_resume():
    s = DistributedGroupSampler(DS, 2, 2, 1, seed=3)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    assert e0 != e1
    resumed = DistributedGroupSampler(DS, 2, 2, 1, seed=3)
    resumed.set_epoch(1)
    assert list(resumed) == e1
    # ranks slice the same global order (same seed and epoch on every rank)
    r0 = DistributedGroupSampler(DS, 2, 2, 0, seed=3)
    r0.set_epoch(1)
    assert set(list(r0)) | set(e1) == set(range(len(DS)))


def test_distributed_group_sampler_bad_rank():
    with pytest.raises(ValueError, match=r'rank must be in \[0, 2\)'):
        DistributedGroupSampler(DS, 2, 2, 2)
    with pytest.raises(ValueError, match='samples_per_gpu must be a positive int'):
        GroupSampler(DS, 0)


@pytest.mark.parametrize('n,world', [(10, 3), (9, 3), (1, 4), (5, 1)])
def test_distributed_test_sampler_covers_in_order(n, world):
    ds = FlagDataset([0] * n)
    parts = [list(DistributedSampler(ds, world, r)) for r in range(world)]
    assert len({len(p) for p in parts}) == 1
    assert sorted(set(i for p in parts for i in p)) == list(range(n))
    # strided split: interleaving the ranks' lists gives dataset order, then the padding
    assert [i for group in zip(*parts) for i in group][:n] == list(range(n))


def test_distributed_test_sampler_shuffle_deterministic():
    ds = FlagDataset([0] * 11)
    a = DistributedSampler(ds, 2, 0, shuffle=True, seed=4)
    b = DistributedSampler(ds, 2, 0, shuffle=True, seed=4)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)


class SizedDataset:
    def __init__(self, sizes):
        self.img_infos = [dict(height=h, width=w) for h, w in sizes]

    def __len__(self):
        return len(self.img_infos)


SIZES = [(480, 640), (640, 480), (427, 640), (480, 640), (640, 427), (500, 375), (480, 640)]


@pytest.mark.parametrize('world', [1, 2, 3])
@pytest.mark.parametrize('spg', [1, 2])
def test_test_sampler_covers_every_image_in_contiguous_shares(world, spg):
    from mmdet_solo.datasets.samplers import TestSampler
    ds = SizedDataset(SIZES)
    parts = [list(TestSampler(ds, spg, world, r)) for r in range(world)]
    assert len({len(p) for p in parts}) == 1 and all(len(p) == len(parts[0]) for p in parts)
    flat = [i for p in parts for i in p]
    assert sorted(set(flat)) == list(range(len(SIZES)))
    assert len(flat) - len(SIZES) < world  # padding only to even out the ranks
    if spg == 1:  # batch 1: dataset order, exactly the former behaviour
        assert flat[:len(SIZES)] == list(range(len(SIZES)))


def test_test_sampler_groups_equal_shapes_for_batches():
    from mmdet_solo.datasets.samplers import TestSampler, aspect_ratio_order
    ds = SizedDataset(SIZES)
    order = list(TestSampler(ds, 2, 1, 0))
    assert order == list(aspect_ratio_order(ds))
    shapes = [SIZES[i] for i in order]
    assert shapes == sorted(shapes, key=lambda s: (s[1] / s[0], s[1]))
    # the three 480x640 images are neighbours
    pos = [k for k, s in enumerate(shapes) if s == (480, 640)]
    assert pos == list(range(pos[0], pos[0] + 3))
    assert list(aspect_ratio_order(FlagDataset([0, 1, 0]))) == [0, 1, 2]  # no img_infos
