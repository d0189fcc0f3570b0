"""The inference allocation cache reuses large blocks inside its scope only, on its thread
only, and changes no number."""
import threading

import numpy as np
import pytest
import torch

from mmdet_solo.ops import cpu_cache

pytestmark = pytest.mark.skipif(not cpu_cache.cpu_cache_available(),
                                reason='the compiled extension is not built')
BIG = 1 << 20   # floats: 4 MB, above the 1 MB the cache starts at


def _alloc_ptr(n=BIG):
    x = torch.empty(n)
    x.fill_(1.0)
    return x.data_ptr()


def test_scope_reuses_freed_blocks():
    with cpu_cache.cpu_allocation_cache() as on:
        assert on
        before = cpu_cache.cpu_cache_stats()
        first = _alloc_ptr()
        second = _alloc_ptr()             # the first block, freed, is handed out again
        after = cpu_cache.cpu_cache_stats()
    assert first == second
    assert after['hits'] >= before['hits'] + 1
    assert after['free_bytes'] >= 4 * BIG


def test_outside_the_scope_and_small_blocks_are_not_cached():
    with cpu_cache.cpu_allocation_cache():
        _alloc_ptr()
    before = cpu_cache.cpu_cache_stats()
    _alloc_ptr()                          # no scope
    with cpu_cache.cpu_allocation_cache():
        _alloc_ptr(1000)                  # 4 kB
    after = cpu_cache.cpu_cache_stats()
    assert (after['hits'], after['misses']) == (before['hits'], before['misses'])


def test_other_threads_are_not_cached():
    seen = {}

    def other():
        seen['before'] = cpu_cache.cpu_cache_stats()
        _alloc_ptr()
        seen['after'] = cpu_cache.cpu_cache_stats()

    with cpu_cache.cpu_allocation_cache():
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert (seen['after']['hits'], seen['after']['misses']) == \
        (seen['before']['hits'], seen['before']['misses'])


def test_nesting_exit_and_empty():
    with cpu_cache.cpu_allocation_cache():
        with cpu_cache.cpu_allocation_cache():
            _alloc_ptr()
        _alloc_ptr()
    cpu_cache.empty_cpu_cache()
    assert cpu_cache.cpu_cache_stats()['free_bytes'] == 0
    with pytest.raises(RuntimeError, match='no cpu_cache_enter'):
        torch.ops.mmdet_solo.cpu_cache_exit()


def test_turned_off_or_other_device(monkeypatch):
    monkeypatch.setattr(cpu_cache, '_enabled', ['0'])
    with cpu_cache.cpu_allocation_cache() as on:
        assert not on
    monkeypatch.setattr(cpu_cache, '_enabled', ['yes'])
    with pytest.raises(ValueError, match="MMDET_SOLO_CPU_CACHE='yes'"):
        cpu_cache.cpu_cache_available()
    monkeypatch.setattr(cpu_cache, '_enabled', ['1'])
    with cpu_cache.cpu_allocation_cache('cuda:0') as on:
        assert not on


def test_inference_is_the_same_with_and_without_the_cache():
    from golden_utils import golden_state_dict, load_case   # weights with many candidates

    from mmdet_solo.config import Config
    from mmdet_solo.models import build_detector
    name = 'solov2_light_448_r18_fpn_8gpu_3x'
    cfg = Config.fromfile(load_case(name).config)
    cfg.model.pretrained = None
    model = build_detector(cfg.model, test_cfg=cfg.test_cfg)
    model.load_state_dict(golden_state_dict(name))
    model.eval()
    img = torch.randn(1, 3, 224, 288, generator=torch.Generator().manual_seed(0))
    meta = [dict(img_shape=(224, 270, 3), ori_shape=(300, 360, 3), pad_shape=(224, 288, 3),
                 scale_factor=0.75, flip=False)]
    results = []
    for enabled in (True, False, True):
        cpu_cache.set_cpu_cache(enabled)
        try:
            results.append(model.simple_test(img, meta)[0])
        finally:
            cpu_cache.set_cpu_cache(True)
    assert len(results[0]) > 0
    for other in results[1:]:
        np.testing.assert_array_equal(results[0].masks, other.masks)
        np.testing.assert_array_equal(results[0].scores, other.scores)


def test_forked_workers_after_the_cache_was_used():
    """A DataLoader forks its workers after inference used (and locked) the cache."""
    with cpu_cache.cpu_allocation_cache():
        _alloc_ptr()
    data = torch.utils.data.TensorDataset(torch.arange(8.0))
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=2,
                                         multiprocessing_context='fork')
    assert sum(float(b[0].sum()) for b in loader) == 28.0
