"""TensorboardLoggerHook writes the logged scalars into TensorBoard event files that read back
with TensorBoard's own ``EventAccumulator`` (needs ``tensorboard``: requirements/optional.txt,
installed by ``make setup``)."""
from __future__ import annotations

import glob
import json
import os

import pytest

from test_engine_trainer import make_loader, make_trainer

pytest.importorskip('tensorboard', reason='tensorboard is not installed '
                    '(pip install -r requirements/optional.txt)')


def test_tensorboard_hook_scalars_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from mmdet_solo.engine import LrUpdaterHook, TensorboardLoggerHook, TextLoggerHook
    log_dir = tmp_path / 'tb'
    text = TextLoggerHook()
    trainer = make_trainer(tmp_path, max_epochs=2, log_interval=1,
                           hooks=[LrUpdaterHook(step=[1]), text,
                                  TensorboardLoggerHook(log_dir=str(log_dir))])
    trainer.run(make_loader())
    files = glob.glob(os.path.join(log_dir, 'events.out.tfevents.*'))
    assert files, os.listdir(log_dir)
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    tags = set(acc.Tags()['scalars'])
    assert {'train/loss', 'train/loss_a', 'train/loss_b', 'train/lr'} <= tags, tags
    # 6 samples / batch 2 = 3 iterations per epoch, logged every iteration: steps 1..6
    loss = acc.Scalars('train/loss')
    assert [e.step for e in loss] == [1, 2, 3, 4, 5, 6]
    # the values are those the text log reports (json log of the same records)
    with open(text.json_file) as f:
        recs = [r for r in map(json.loads, f) if r.get('mode') == 'train']
    assert len(recs) == 6
    for ev, rec in zip(loss, recs):
        assert ev.value == pytest.approx(rec['loss'], rel=1e-5, abs=1e-6)
    lr = [e.value for e in acc.Scalars('train/lr')]
    assert lr[0] == pytest.approx(0.05) and lr[-1] == pytest.approx(0.005)
