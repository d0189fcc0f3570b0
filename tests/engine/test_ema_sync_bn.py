"""EMAHook (averaging, validation swap, checkpoints, resume, loading), custom_hooks and
auto_scale_lr config checks, --sync-bn conversion and its CPU refusal (fast, CPU)."""
from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from mmdet_solo.apis.config_check import check_config
from mmdet_solo.apis.train import SyncBNError, _optimizer_cfg, check_sync_bn, convert_sync_bn
from mmdet_solo.config import Config, ConfigError
from mmdet_solo.engine import EMAHook, EpochBasedTrainer, build_optimizer
from mmdet_solo.engine.hooks import eval_weights
from mmdet_solo.utils.checkpoint import load_checkpoint


class Data(Dataset):
    def __init__(self, n: int = 6) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return {'img': self.x[i]}


class Net(nn.Module):
    """A linear layer and a BatchNorm (parameters and running-statistics buffers)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.bn = nn.BatchNorm1d(3)

    def forward(self, img, **kwargs):
        return dict(loss=(self.bn(self.fc(img)) - 1).pow(2).mean())


class Snapshots:
    """Records the model's state after every optimizer step (priority before the EMA)."""

    priority = 0

    def __init__(self) -> None:
        self.states = []

    def after_iter(self, trainer) -> None:
        self.states.append({k: v.clone() for k, v in trainer.model.state_dict().items()})


def make_trainer(work_dir, ema: EMAHook, max_epochs: int = 2):
    torch.manual_seed(0)
    model = Net()
    opt = build_optimizer(model, dict(type='SGD', lr=0.1, momentum=0.9))
    trainer = EpochBasedTrainer(model, opt, str(work_dir), max_epochs=max_epochs,
                                meta=dict(CLASSES=['x']))
    trainer.register_hook(ema)
    return trainer


def loader() -> DataLoader:
    return DataLoader(Data(), batch_size=2, shuffle=False)


def reference_ema(states, momentum, gamma, key, exp=True):
    """The module docstring's formulas, written out with plain Python floats."""
    ema = None
    for t, state in enumerate(states):
        v = state[key].double()
        if ema is None:
            ema = v.clone()
            continue
        m = (1 - momentum) * math.exp(-(1 + t) / gamma) + momentum if exp else momentum
        ema = (1 - m) * ema + m * v
    return ema


@pytest.mark.parametrize('ema_type', ['ExpMomentumEMA', 'ExponentialMovingAverage'])
def test_ema_follows_the_formula_and_copies_buffers(tmp_path, ema_type):
    kwargs = dict(gamma=4) if ema_type == 'ExpMomentumEMA' else {}
    ema = EMAHook(momentum=0.2, ema_type=ema_type, **kwargs)
    trainer = make_trainer(tmp_path, ema)
    snaps = Snapshots()
    trainer.register_hook(snaps)
    trainer.run(loader())
    assert ema.steps == 6 and len(snaps.states) == 6
    for key in ('fc.weight', 'bn.bias'):
        want = reference_ema(snaps.states, 0.2, 4, key, exp=ema_type == 'ExpMomentumEMA')
        torch.testing.assert_close(ema.ema[key].double(), want, rtol=0, atol=1e-6)
        assert not torch.equal(ema.ema[key], trainer.model.state_dict()[key])
    # buffers are copied, not averaged (update_buffers=False)
    for key in ('bn.running_mean', 'bn.num_batches_tracked'):
        assert torch.equal(ema.ema[key], trainer.model.state_dict()[key])


def test_update_buffers_averages_float_buffers(tmp_path):
    ema = EMAHook(momentum=0.2, gamma=4, update_buffers=True)
    trainer = make_trainer(tmp_path, ema, max_epochs=1)
    snaps = Snapshots()
    trainer.register_hook(snaps)
    trainer.run(loader())
    want = reference_ema(snaps.states, 0.2, 4, 'bn.running_var')
    torch.testing.assert_close(ema.ema['bn.running_var'].double(), want, rtol=0, atol=1e-6)
    assert torch.equal(ema.ema['bn.num_batches_tracked'], torch.tensor(3))


def test_validation_swaps_averaged_weights_in_and_back(tmp_path):
    ema = EMAHook(momentum=0.3)
    trainer = make_trainer(tmp_path, ema, max_epochs=1)
    trainer.run(loader())
    raw = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with eval_weights(trainer):
        inside = trainer.model.state_dict()
        assert torch.equal(inside['fc.weight'], ema.ema['fc.weight'])
        assert not torch.equal(inside['fc.weight'], raw['fc.weight'])
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, raw[k]), k


def test_checkpoint_resume_and_loading(tmp_path):
    full = make_trainer(tmp_path / 'full', EMAHook(momentum=0.2, gamma=4))
    full.run(loader())
    full.save_checkpoint(str(tmp_path), 'full.pth')
    ckpt = torch.load(tmp_path / 'full.pth', weights_only=True)
    assert list(ckpt['ema_state_dict']) == list(ckpt['state_dict'])
    assert ckpt['meta']['ema']['steps'] == 6
    assert not torch.equal(ckpt['ema_state_dict']['fc.weight'], ckpt['state_dict']['fc.weight'])

    # 1 epoch, resume, 1 more: the same average as the uninterrupted run
    first = make_trainer(tmp_path / 'a', EMAHook(momentum=0.2, gamma=4), max_epochs=1)
    first.run(loader())
    first.save_checkpoint(str(tmp_path), 'e1.pth')
    ema2 = EMAHook(momentum=0.2, gamma=4)
    second = make_trainer(tmp_path / 'b', ema2)
    second.resume(str(tmp_path / 'e1.pth'))
    assert ema2.steps == 3
    second.run(loader())
    for k, v in full.hooks[0].ema.items():
        torch.testing.assert_close(ema2.ema[k], v, rtol=0, atol=1e-6, msg=k)

    # loading: the averaged weights by default, the raw ones with use_ema=False
    net = Net()
    meta = load_checkpoint(net, str(tmp_path / 'full.pth'))
    assert meta.get('ema_weights') is True
    assert torch.equal(net.fc.weight, ckpt['ema_state_dict']['fc.weight'])
    load_checkpoint(net, str(tmp_path / 'full.pth'), use_ema=False)
    assert torch.equal(net.fc.weight, ckpt['state_dict']['fc.weight'])

    # publish_model: the averaged weights become the state_dict (--no-ema: the raw ones)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'tools'))
    import publish_model
    for use_ema, key in ((True, 'ema_state_dict'), (False, 'state_dict')):
        out = publish_model.publish(str(tmp_path / 'full.pth'), str(tmp_path / f'pub{use_ema}.pth'),
                                    use_ema=use_ema)
        pub = torch.load(out, weights_only=True)
        assert 'ema_state_dict' not in pub and 'optimizer' not in pub
        assert torch.equal(pub['state_dict']['fc.weight'], ckpt[key]['fc.weight'])


def test_resume_without_ema_restarts_the_average(tmp_path, caplog):
    plain = make_trainer(tmp_path / 'p', EMAHook(), max_epochs=1)
    plain.hooks.clear()
    plain.run(loader())
    plain.save_checkpoint(str(tmp_path), 'plain.pth')
    ema = EMAHook()
    trainer = make_trainer(tmp_path / 'r', ema)
    with caplog.at_level(logging.WARNING, logger='mmdet_solo'):
        trainer.resume(str(tmp_path / 'plain.pth'))
    assert 'no ema_state_dict' in caplog.text and ema.ema is None


def _cfg(**top) -> Config:
    return Config(dict(top))


@pytest.mark.parametrize('hooks, match', [
    ([dict(type='EMAHok')], "did you mean 'EMAHook'"),
    ([dict(type='EMAHook', momentom=0.1)], "unknown key 'momentom'"),
    ([dict(type='EMAHook', momentum=2)], r'momentum must be in \(0, 1\)'),
    ([dict(type='EMAHook', ema_type='ExponentialMovingAverage', gamma=10)], 'gamma'),
    ([dict(type='EMAHook', priority='MIDDLE')], "priority 'MIDDLE'"),
    ([dict(momentum=0.1)], "must be a dict with a 'type'"),
    (dict(type='EMAHook'), 'must be a list'),
])
def test_custom_hooks_are_checked(hooks, match):
    with pytest.raises(ConfigError, match=match):
        check_config(_cfg(custom_hooks=hooks))


def test_custom_hooks_accept_mmdet_style_ema():
    check_config(_cfg(custom_hooks=[dict(type='EMAHook', ema_type='ExpMomentumEMA',
                                         momentum=0.0002, update_buffers=True, priority=49)]))


@pytest.mark.parametrize('value, match', [
    (dict(enable=False, base_batch_size=16, base_lr=0.01), r"unknown key\(s\) \['base_lr'\]"),
    (dict(enable=False, base_batch_size=0), 'positive int'),
    (dict(enable=False, base_batch_size=16.0), 'positive int'),
    (dict(enable=False), 'positive int'),
    (dict(enable='yes', base_batch_size=16), 'True or False'),
    ([16], 'must be a dict'),
])
def test_auto_scale_lr_is_checked(value, match):
    with pytest.raises(ConfigError, match=match):
        check_config(_cfg(auto_scale_lr=value))


def test_auto_scale_lr_scales_linearly_and_logs(caplog):
    logger = logging.getLogger('test_auto_scale_lr')
    cfg = _cfg(optimizer=dict(type='SGD', lr=0.01),
               auto_scale_lr=dict(enable=True, base_batch_size=16))
    with caplog.at_level(logging.INFO, logger='test_auto_scale_lr'):
        opt = _optimizer_cfg(cfg, world_size=2, imgs_per_gpu=3, logger=logger)
    assert opt['lr'] == pytest.approx(0.01 * 6 / 16)
    assert cfg.optimizer.lr == 0.01  # the config itself is left as written
    assert '0.01 -> 0.00375' in caplog.text
    cfg.auto_scale_lr.enable = False
    with caplog.at_level(logging.INFO, logger='test_auto_scale_lr'):
        assert _optimizer_cfg(cfg, 2, 3, logger)['lr'] == 0.01
    assert 'would use 0.00375' in caplog.text


def test_sync_bn_conversion_keeps_state_dict_and_cpu_distributed_is_refused():
    from mmdet_solo.models.backbones.resnet import ResNet
    logger = logging.getLogger('test_sync_bn')
    model = nn.Sequential(ResNet(depth=18, norm_eval=False, frozen_stages=-1), Net())
    keys = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    n_bn = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert convert_sync_bn(model, logger) == n_bn > 0
    assert not any(type(m) in (nn.BatchNorm1d, nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in model.modules()) == n_bn
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == keys
    check_sync_bn(model, distributed=False, device=torch.device('cpu'))  # single process: BN
    with pytest.raises(SyncBNError, match='SyncBatchNorm needs CUDA'):
        check_sync_bn(model, distributed=True, device=torch.device('cpu'))
    # frozen BatchNorm (norm_eval) never synchronises: allowed on CPUs
    frozen = ResNet(depth=18, norm_eval=True)
    convert_sync_bn(frozen, logger)
    check_sync_bn(frozen, distributed=True, device=torch.device('cpu'))
    # a single-process CPU forward of SyncBatchNorm is plain BatchNorm (PyTorch's fallback)
    model.train()
    model[1](torch.randn(4, 3))


def test_syncbn_norm_cfg_builds_sync_batchnorm():
    from mmdet_solo.models.layers.conv_module import build_norm_layer
    _, layer = build_norm_layer(dict(type='SyncBN'), 8)
    assert isinstance(layer, nn.SyncBatchNorm)
