"""Unit tests of the trainer and its hooks with a toy model (fast, CPU)."""
from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from mmdet_solo.engine import (CheckpointHook, EpochBasedTrainer, LrUpdaterHook,
                               NonFiniteLossError, TextLoggerHook, build_optimizer, clip_grads,
                               gather_results)
from mmdet_solo.utils.misc import set_random_seed


class ToyData(Dataset):
    def __init__(self, n: int = 6) -> None:
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.3
        self.CLASSES = ('thing',)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        # random "augmentation" from the global RNG, so that resuming must restore it
        noise = torch.randn(4) * 0.01
        return {'img': self.x[i] + noise, 'target': self.y[i]}


class ToyModel(nn.Module):
    def __init__(self, nan_at_call: int = -1) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)
        self.calls = 0
        self.nan_at_call = nan_at_call

    def forward(self, img, target, return_loss=True, **kwargs):
        self.calls += 1
        pred = self.fc(img).squeeze(-1)
        loss_b = 0.1 * pred.abs().mean()
        if self.calls == self.nan_at_call:
            loss_b = loss_b * float('nan')
        return dict(loss_a=((pred - target) ** 2).mean(), loss_b=loss_b)


def make_loader() -> DataLoader:
    # RandomSampler without a generator draws its order from the global torch RNG
    return DataLoader(ToyData(), batch_size=2, shuffle=True)


def make_trainer(work_dir, model=None, max_epochs=2, hooks=None, lr=0.05, **kwargs):
    model = model or ToyModel()
    kwargs.setdefault('grad_clip', dict(max_norm=10))
    optimizer = build_optimizer(model, dict(type='SGD', lr=lr, momentum=0.9, weight_decay=1e-4))
    trainer = EpochBasedTrainer(model, optimizer, str(work_dir), max_epochs=max_epochs,
                                log_interval=kwargs.pop('log_interval', 1),
                                meta=dict(CLASSES=['thing'], config='x = 1',
                                          mmdet_solo_version='0.1.0'), **kwargs)
    for hook in hooks if hooks is not None else [
            LrUpdaterHook(step=[1], warmup='linear', warmup_iters=2, warmup_ratio=0.1),
            CheckpointHook()]:
        trainer.register_hook(hook)
    return trainer


class LrRecorder:
    def __init__(self) -> None:
        self.lrs = []

    def before_iter(self, trainer) -> None:
        self.lrs.append(trainer.current_lr()[0])


def test_lr_schedule_warmup_and_steps(tmp_path):
    rec = LrRecorder()
    trainer = make_trainer(tmp_path, max_epochs=4, lr=0.1, hooks=[
        LrUpdaterHook(step=[2, 3], gamma=0.1, warmup='linear', warmup_iters=4, warmup_ratio=0.1),
        rec])
    trainer.run(make_loader())  # 3 iterations per epoch
    # warm-up: 0.1 * (1 - (1 - i/4) * 0.9) for i = 0..3, then 0.1; x0.1 from epoch index 2, 3
    expected = [0.01, 0.0325, 0.055, 0.0775, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001]
    assert rec.lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert trainer.epoch == 4 and trainer.iter == 12


def test_lr_step_every_n_epochs_without_warmup():
    hook = LrUpdaterHook(step=2, gamma=0.5)
    assert [hook.get_lr(e, 5, 1.0) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    with pytest.raises(ValueError, match='warmup_iters'):
        LrUpdaterHook(step=[1], warmup='linear', warmup_iters=0)



def test_lr_cosine_by_iteration_with_warmup(tmp_path):
    rec = LrRecorder()
    trainer = make_trainer(tmp_path, max_epochs=2, lr=1.0, hooks=[
        LrUpdaterHook(policy='CosineAnnealing', min_lr_ratio=0.1, by_epoch=False,
                      warmup='linear', warmup_iters=2, warmup_ratio=0.5), rec])
    trainer.run(make_loader())  # 6 iterations
    # cosine from 1.0 to 0.1 over 6 iterations: 0.1 + 0.45 * (1 + cos(pi * i / 6))
    cos = [1.0, 0.9397114317, 0.775, 0.55, 0.325, 0.1602885683]
    # linear warm-up from half the cosine value for i = 0, 1: factor 1 - (1 - i/2) * 0.5
    expected = [cos[0] * 0.5, cos[1] * 0.75] + cos[2:]
    assert rec.lrs == pytest.approx(expected, rel=1e-9)


def test_lr_cosine_by_epoch_and_bad_arguments():
    hook = LrUpdaterHook(policy='CosineAnnealing', min_lr=0.0)
    assert [hook.get_lr(e, 4, 2.0) for e in range(4)] == pytest.approx(
        [2.0, 1.7071067812, 1.0, 0.2928932188])
    with pytest.raises(ValueError, match='exactly one of min_lr and min_lr_ratio'):
        LrUpdaterHook(policy='CosineAnnealing')
    with pytest.raises(NotImplementedError, match='supported: step, CosineAnnealing'):
        LrUpdaterHook(policy='poly')

def test_grad_clip_uses_params_with_grad_only(tmp_path):
    a = nn.Parameter(torch.zeros(2))
    a.grad = torch.tensor([3.0, 4.0])
    b = nn.Parameter(torch.zeros(3))        # no gradient
    c = nn.Parameter(torch.zeros(1), requires_grad=False)
    c.grad = torch.tensor([100.0])          # frozen: not part of the norm, not clipped
    norm = clip_grads([a, b, c], max_norm=1.0, norm_type=2)
    assert norm == pytest.approx(5.0)
    assert a.grad.tolist() == pytest.approx([0.6, 0.8], rel=1e-5)
    assert c.grad.item() == 100.0
    assert clip_grads([b]) is None
    with pytest.raises(ValueError, match='max_norm'):
        make_trainer(tmp_path, grad_clip=dict(norm_type=2))


def test_grad_clip_in_training_logs_norm(tmp_path):
    trainer = make_trainer(tmp_path, max_epochs=1, lr=0.0, hooks=[],
                           grad_clip=dict(max_norm=1e-3))
    seen = []

    class Spy:
        def after_iter(self, tr):
            grads = [p.grad for p in tr.model.parameters() if p.grad is not None]
            seen.append(torch.norm(torch.stack([g.norm() for g in grads])).item())
            seen.append(tr.log_buffer.average()['grad_norm'])
    trainer.register_hook(Spy())
    trainer.run(make_loader())
    assert seen[0] == pytest.approx(1e-3, rel=1e-4)   # clipped
    assert seen[1] > 1e-2                            # the logged norm is the norm before clipping


def test_checkpoint_meta_and_latest(tmp_path):
    trainer = make_trainer(tmp_path, max_epochs=2)
    trainer.run(make_loader())
    names = sorted(os.listdir(tmp_path))
    assert {'epoch_1.pth', 'epoch_2.pth', 'latest.pth'} <= set(names)
    assert not [n for n in names if n.endswith('.tmp')]
    ckpt = torch.load(tmp_path / 'epoch_2.pth', weights_only=True)
    meta = ckpt['meta']
    assert meta['epoch'] == 2 and meta['iter'] == 6
    assert meta['CLASSES'] == ['thing'] and meta['config'] == 'x = 1'
    assert meta['mmdet_solo_version'] == '0.1.0' and 'time' in meta
    assert len(meta['rng_state']) == 1 and 'torch' in meta['rng_state'][0]
    assert 'optimizer' in ckpt and set(ckpt['state_dict']) == {
        'fc.weight', 'fc.bias', 'frozen.weight', 'frozen.bias'}
    assert (tmp_path / 'latest.pth').read_bytes() == (tmp_path / 'epoch_2.pth').read_bytes()
    assert torch.load(tmp_path / 'epoch_1.pth', weights_only=True)['meta']['epoch'] == 1


def _run(work_dir, max_epochs, resume=None):
    set_random_seed(0)
    trainer = make_trainer(work_dir, max_epochs=max_epochs)
    if resume:
        trainer.resume(resume)
    trainer.run(make_loader())
    return trainer


def test_resume_restores_state_and_reproduces_run(tmp_path):
    full = _run(tmp_path / 'full', 3)
    first = torch.load(tmp_path / 'full' / 'epoch_1.pth', weights_only=True)

    set_random_seed(1)  # a different RNG state and fresh weights: resume must restore both
    trainer = make_trainer(tmp_path / 'resumed', max_epochs=3)
    trainer.resume(str(tmp_path / 'full' / 'epoch_1.pth'))
    assert (trainer.epoch, trainer.iter) == (1, 3)
    saved_groups = first['optimizer']['param_groups'][0]
    assert trainer.optimizer.param_groups[0]['lr'] == saved_groups['lr']
    assert trainer.optimizer.param_groups[0]['initial_lr'] == 0.05
    fc_w = trainer.model.fc.weight
    assert torch.equal(trainer.optimizer.state[fc_w]['momentum_buffer'],
                       first['optimizer']['state'][0]['momentum_buffer'])
    assert torch.equal(fc_w.detach(), first['state_dict']['fc.weight'])
    rec = LrRecorder()
    trainer.register_hook(rec)
    trainer.run(make_loader())
    assert rec.lrs == pytest.approx([0.005] * 6)     # step at epoch index 1, warm-up over
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, trainer.model.state_dict()[k]), k


def test_resume_requires_training_checkpoint(tmp_path):
    model = ToyModel()
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, tmp_path / 'weights.pth')
    trainer = make_trainer(tmp_path, model=ToyModel())
    with pytest.raises(KeyError, match='load_from'):
        trainer.resume(str(tmp_path / 'weights.pth'))
    trainer.load_weights(str(tmp_path / 'weights.pth'))
    assert torch.equal(trainer.model.fc.weight, model.fc.weight)
    assert trainer.epoch == 0


def test_nan_loss_stops_with_iteration_and_term(tmp_path):
    model = ToyModel(nan_at_call=5)  # epoch 2 (3 iterations per epoch), iteration 2
    trainer = make_trainer(tmp_path, model=model, max_epochs=3)
    with pytest.raises(NonFiniteLossError) as info:
        trainer.run(make_loader())
    msg = str(info.value)
    assert 'epoch 2, iteration 2' in msg and 'global iteration 5' in msg
    assert 'loss_b=nan' in msg and 'loss_a' not in msg
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert trainer.iter == 4


def test_text_and_json_logs(tmp_path):
    json_file = str(tmp_path / 'run.log.json')
    trainer = make_trainer(tmp_path, max_epochs=2, log_interval=2)
    trainer.register_hook(TextLoggerHook(json_file=json_file))
    trainer.meta['seed'] = 0
    trainer.run(make_loader())
    lines = [json.loads(line) for line in open(json_file)]
    assert lines[0] == {'mmdet_solo_version': '0.1.0', 'seed': 0}
    train = [r for r in lines[1:] if r.get('mode') == 'train']
    # every 2 iterations and at the end of each 3-iteration epoch
    assert [(r['epoch'], r['iter']) for r in train] == [(1, 2), (1, 3), (2, 2), (2, 3)]
    for r in train:
        assert {'lr', 'time', 'data_time', 'memory', 'loss_a', 'loss_b', 'loss',
                'grad_norm'} <= set(r)
        assert r['loss'] == pytest.approx(r['loss_a'] + r['loss_b'], rel=1e-3, abs=1e-5)
    # the lr of the iteration logged: index 1 is in the warm-up, 0.05 * (1 - 0.5 * 0.9)
    assert train[0]['lr'] == pytest.approx(0.0275) and train[1]['lr'] == pytest.approx(0.05)


def test_val_results_logged(tmp_path):
    json_file = str(tmp_path / 'val.log.json')

    class FakeEval:
        def after_epoch(self, tr):
            tr.eval_results = {'segm_mAP': 0.25 * tr.epoch}
    trainer = make_trainer(tmp_path, max_epochs=2, hooks=[TextLoggerHook(json_file=json_file),
                                                          FakeEval()])
    trainer.run(make_loader())
    val = [json.loads(l) for l in open(json_file) if '"val"' in l]
    assert [(r['epoch'], r['segm_mAP']) for r in val] == [(1, 0.25), (2, 0.5)]


def test_amp_on_cpu_uses_bf16(tmp_path):
    trainer = make_trainer(tmp_path, max_epochs=1, amp=dict(loss_scale='dynamic'), hooks=[])
    assert trainer.amp_dtype == torch.bfloat16 and trainer.scaler is None
    before = trainer.model.fc.weight.detach().clone()
    trainer.run(make_loader())
    assert not torch.equal(before, trainer.model.fc.weight)


class ToyConvModel(nn.Module):
    """Records the memory format of the images it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.seen_channels_last = []

    def forward(self, img, target, return_loss=True, **kwargs):
        self.seen_channels_last.append(img.is_contiguous(memory_format=torch.channels_last))
        return dict(loss=(self.conv(img).mean((1, 2, 3)) - target).pow(2).mean())


class ToyImages(ToyData):
    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {'img': torch.randn(3, 5, 6, generator=g), 'target': self.y[i]}


@pytest.mark.parametrize('channels_last', [False, True])
def test_channels_last_option(tmp_path, channels_last):
    set_random_seed(0)
    model = ToyConvModel()
    trainer = make_trainer(tmp_path, model=model, max_epochs=1, hooks=[],
                           channels_last=channels_last)
    trainer.run(DataLoader(ToyImages(), batch_size=2))
    assert model.seen_channels_last == [channels_last] * 3
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert model.conv.weight.grad is not None
    if channels_last:  # same maths as the default layout
        set_random_seed(0)
        ref = ToyConvModel()
        make_trainer(tmp_path / 'ref', model=ref, max_epochs=1,
                     hooks=[]).run(DataLoader(ToyImages(), batch_size=2))
        assert torch.allclose(ref.conv.weight, model.conv.weight, atol=1e-6)


def test_build_optimizer_by_name_and_errors():
    model = ToyModel()
    opt = build_optimizer(model, dict(type='AdamW', lr=1e-3, weight_decay=0.05))
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]['weight_decay'] == 0.05
    with pytest.raises(KeyError, match='not in torch.optim'):
        build_optimizer(model, dict(type='Sgd', lr=0.1))
    with pytest.raises(TypeError, match='SGD'):
        build_optimizer(model, dict(type='SGD', lr=0.1, momentun=0.9))


def test_collect_results_orders_and_dedups():
    assert gather_results([(2, 'c'), (0, 'a'), (1, 'b'), (0, 'a')], 3) == ['a', 'b', 'c']
    with pytest.raises(RuntimeError, match='no result'):
        gather_results([(0, 'a')], 2)


def test_tensorboard_hook_optional(tmp_path, caplog):
    from mmdet_solo.engine import TensorboardLoggerHook
    trainer = make_trainer(tmp_path, max_epochs=1, hooks=[TensorboardLoggerHook()])
    trainer.logger.propagate = True  # let caplog see the records
    try:
        with caplog.at_level('WARNING', logger='mmdet_solo'):
            trainer.run(make_loader())
    finally:
        trainer.logger.propagate = False
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert 'tensorboard is not installed' in caplog.text
    else:
        assert os.listdir(tmp_path / 'tf_logs')


def test_init_dist_needs_torchrun_env(monkeypatch):
    from mmdet_solo.engine import init_dist
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match='torchrun'):
        init_dist('pytorch')
    with pytest.raises(ValueError, match="launcher 'mpi'"):
        init_dist('mpi')


def test_stale_temporary_checkpoints_are_removed_and_reported(tmp_path, caplog):
    tmp_path.mkdir(exist_ok=True)
    stale = ['.epoch_3.pth.k2j4_x9.tmp', '.latest.pth.abc123.tmp']
    kept = ['.notes.tmp', 'epoch_1.pth.tmp', 'mine.txt']
    for name in stale + kept:
        (tmp_path / name).write_bytes(b'x' * 10)
    trainer = make_trainer(tmp_path, max_epochs=1)
    with caplog.at_level('WARNING'):
        trainer.run(make_loader())
    names = set(os.listdir(tmp_path))
    assert not names & set(stale) and set(kept) <= names
    assert 'removed 2 temporary checkpoint file(s)' in caplog.text and stale[0] in caplog.text


@pytest.mark.parametrize('order', [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_hook_order_does_not_change_what_is_logged(tmp_path, order):
    def logged(work_dir, order):
        set_random_seed(0)
        json_file = str(work_dir / 'run.log.json')
        hooks = [LrUpdaterHook(step=[1], warmup='linear', warmup_iters=2, warmup_ratio=0.1),
                 CheckpointHook(), TextLoggerHook(json_file=json_file)]
        make_trainer(work_dir, max_epochs=2, hooks=[hooks[i] for i in order]).run(make_loader())
        records = [json.loads(line) for line in open(json_file)][1:]
        for r in records:
            assert {'time', 'data_time', 'grad_norm', 'lr', 'loss'} <= set(r)
        timing = ('time', 'data_time', 'memory', 'eta_seconds')
        return [{k: v for k, v in r.items() if k not in timing} for r in records]

    assert logged(tmp_path / 'given', order) == logged(tmp_path / 'reference', (0, 1, 2))


def test_run_step_is_the_only_optimizer_step(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, max_epochs=1, hooks=[])
    steps = []
    real_step = trainer.optimizer.step
    monkeypatch.setattr(trainer.optimizer, 'step', lambda *a, **k: steps.append(1) or real_step())
    before = trainer.model.fc.weight.detach().clone()
    out = trainer.run_step(next(iter(make_loader())))
    assert steps == [1] and not torch.equal(before, trainer.model.fc.weight)
    assert set(out['log_vars']) == {'loss_a', 'loss_b', 'loss', 'grad_norm'}
    assert out['num_samples'] == 2 and not out['loss'].requires_grad
