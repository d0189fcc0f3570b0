"""Parameter counts and state-dict layout equal the ORIGINAL release's (tests/data/golden/*/spec.json).

``spec.json`` lists every ``state_dict()`` key of the original model with its shape; the
parameters are those keys minus the BatchNorm buffers (``running_mean``, ``running_var``,
``num_batches_tracked``). The counts are also written in docs/MODELS.md.
"""
import json
import math
import os

import pytest

from golden_utils import CONFIGS, GOLDEN_DIR, ROOT

from mmdet_solo.config import Config
from mmdet_solo.models import build_detector

BUFFER_LEAVES = ('running_mean', 'running_var', 'num_batches_tracked')

# the original's parameter counts (computed from spec.json, pinned here as documented numbers)
EXPECTED = {
    'solo_r50_fpn_8gpu_1x': 36_301_232,
    'decoupled_solo_r50_fpn_8gpu_1x': 40_028_560,
    'decoupled_solo_light_r50_fpn_8gpu_3x': 32_354_192,
    'solov2_r50_fpn_8gpu_1x': 46_592_912,
    'solov2_light_448_r18_fpn_8gpu_3x': 18_271_760,
}


def _spec(name):
    with open(os.path.join(GOLDEN_DIR, name, 'spec.json')) as f:
        d = json.load(f)
    return d, [(k, tuple(s)) for k, s in d['spec']]


def original_param_count(name):
    _, spec = _spec(name)
    return sum(math.prod(s) for k, s in spec if k.rsplit('.', 1)[-1] not in BUFFER_LEAVES)


def _build(name):
    cfg = Config.fromfile(os.path.join(ROOT, CONFIGS[name]))
    cfg.model.pretrained = None
    return build_detector(cfg.model, train_cfg=cfg.get('train_cfg'), test_cfg=cfg.get('test_cfg'))


def test_expected_numbers_are_the_specs():
    assert set(EXPECTED) == set(CONFIGS)
    for name, n in EXPECTED.items():
        assert original_param_count(name) == n, name


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_param_count_and_keys_match_original(name):
    d, spec = _spec(name)
    assert d['config'] == CONFIGS[name], (d['config'], CONFIGS[name])
    model = _build(name)
    ours = sum(p.numel() for p in model.parameters())
    theirs = original_param_count(name)
    print(f'{name}: ours {ours:,} original {theirs:,}')
    # key sets first: their difference says where a count mismatch comes from
    sd = model.state_dict()
    spec_keys = {k for k, _ in spec}
    only_ours = sorted(set(sd) - spec_keys)
    only_theirs = sorted(spec_keys - set(sd))
    assert not only_ours and not only_theirs, \
        f'state_dict keys differ: only ours {only_ours[:20]}, only the original {only_theirs[:20]}'
    shapes = [f'{k}: ours {tuple(sd[k].shape)} original {s}' for k, s in spec if tuple(sd[k].shape) != s]
    assert not shapes, 'shapes differ:\n' + '\n'.join(shapes[:20])
    assert ours == theirs, f'{name}: {ours} parameters, the original has {theirs}'
    # parameters vs buffers split the same way as in the original
    params = {k for k, _ in model.named_parameters()}
    assert params == {k for k in spec_keys if k.rsplit('.', 1)[-1] not in BUFFER_LEAVES}


def test_models_md_lists_these_counts():
    path = os.path.join(ROOT, 'docs', 'MODELS.md')
    with open(path) as f:
        text = f.read()
    for name, n in EXPECTED.items():
        line = next((ln for ln in text.splitlines() if f'`{name}`' in ln), None)
        assert line is not None, f'{name} missing from docs/MODELS.md'
        assert f'{n:,}' in line, f'{name}: {n:,} not in its docs/MODELS.md row: {line}'


def test_cityscapes_param_count():
    """The Cityscapes config is the COCO 1x model with 8 instead of 80 category outputs: the
    original's count less 72 output channels of the final 3x3 category conv (512 inputs), as
    docs/MODELS.md lists it."""
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'solov2',
                                       'solov2_r50_fpn_8gpu_1x_cityscapes.py'))
    cfg.model.pretrained = None
    model = build_detector(cfg.model, train_cfg=cfg.get('train_cfg'), test_cfg=cfg.get('test_cfg'))
    n = sum(p.numel() for p in model.parameters())
    assert n == EXPECTED['solov2_r50_fpn_8gpu_1x'] - (80 - 8) * (512 * 3 * 3 + 1) == 46_261_064
    with open(os.path.join(ROOT, 'docs', 'MODELS.md')) as f:
        line = next(ln for ln in f if '`solov2_r50_fpn_8gpu_1x_cityscapes`' in ln)
    assert f'{n:,}' in line, line
