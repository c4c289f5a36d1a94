"""A resumed run trains at the lr its config's schedule gives, whatever the checkpoint's
schedulers said (ScheduleReplayHook): generated resume points x schedule changes, each
compared with an uninterrupted run of the new config."""
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mmreplk.engine  # noqa: F401  registers the hooks
from mmreplk.apis import with_engine_hooks


class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(torch.stack(inputs) if isinstance(inputs, list) else inputs)
        return {'loss': out.pow(2).mean()} if mode == 'loss' else out


class Lrs(Hook):
    """Records the lr each training iteration runs at."""

    def __init__(self, record):
        self.record = record

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.record[runner.iter + 1] = runner.optim_wrapper.get_lr()['lr'][0]


def _schedule(length: int, warmup: int):
    return [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup),
            dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=warmup,
                 end=length)]


def _train(work_dir, length, schedule, resume=False, load_from=None):
    """Train the toy for ``length`` iterations (its config: ``schedule``, a checkpoint
    at the end), with the engine's hooks as train.py adds them; the lr of each
    iteration it ran."""
    record = {}
    data = [dict(inputs=torch.ones(2), labels=torch.zeros(1)) for _ in range(4)]
    cfg = Config(dict(param_scheduler=schedule, load_from=load_from))
    hooks = with_engine_hooks(cfg, strict=False).custom_hooks + [Lrs(record)]
    Runner(model=Toy(), work_dir=str(work_dir), experiment_name=f'run{length}{resume}',
           train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler'),
                                 batch_size=1, collate_fn=dict(type='default_collate')),
           train_cfg=dict(by_epoch=False, max_iters=length),
           optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
           param_scheduler=schedule, resume=resume, load_from=load_from,
           default_hooks=dict(checkpoint=dict(type='mmreplk.SafeCheckpointHook',
                                              interval=100, by_epoch=False,
                                              save_last=True),
                              logger=dict(type='LoggerHook', interval=100)),
           custom_hooks=hooks, default_scope='mmengine', log_level='WARNING',
           cfg=cfg).train()
    return record


#: (iterations before the resume, iterations added, warm-up): a resume at the end of
#: the old schedule, and one with more added than run, inside the new warm-up's reach.
CASES = [(4, 2, 1), (3, 5, 2)]


@pytest.fixture(scope='module')
def fresh(tmp_path_factory):
    """The lr of each iteration of an uninterrupted run of ``(length, warmup)``, run
    once per module."""
    runs = {}

    def lrs(length: int, warmup: int) -> dict:
        if (length, warmup) not in runs:
            runs[length, warmup] = _train(tmp_path_factory.mktemp('fresh'), length,
                                          _schedule(length, warmup))
        return runs[length, warmup]
    return lrs


@pytest.mark.parametrize('first, longer, warmup', CASES)
def test_resume_with_a_longer_schedule_follows_the_new_config(tmp_path, fresh, first,
                                                              longer, warmup):
    total = first + longer
    _train(tmp_path, first, _schedule(first, warmup))
    resumed = _train(tmp_path, total, _schedule(total, warmup), resume=True,
                     load_from=str(tmp_path / f'iter_{first}.pth'))
    expected = fresh(total, warmup)
    assert sorted(resumed) == list(range(first + 1, total + 1))
    for it, lr in resumed.items():
        assert lr == pytest.approx(expected[it], rel=1e-6, abs=1e-12), (it, resumed)
    assert resumed[first + 1] > 0  # the old schedule had reached 0 here


def test_resume_with_the_same_schedule_is_unchanged(tmp_path, fresh):
    _train(tmp_path, 3, _schedule(8, 2))
    resumed = _train(tmp_path, 8, _schedule(8, 2), resume=True,
                     load_from=str(tmp_path / 'iter_3.pth'))
    expected = fresh(8, 2)
    assert resumed == pytest.approx({k: expected[k] for k in resumed}, rel=1e-6)


def test_metric_driven_schedules_are_not_replayed():
    """ReduceOnPlateau needs the validation metrics of the past: its saved state is
    resumed as mmengine does (with a warning); every other kind is replayed, also in the
    per-optimizer dict form."""
    from mmengine.optim import LinearLR, ReduceOnPlateauLR
    from mmreplk.engine.schedule import _replayable
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    linear = LinearLR(optimizer, by_epoch=False, end=2)
    plateau = ReduceOnPlateauLR(optimizer, monitor='loss')
    assert _replayable([linear]) and _replayable({'a': [linear], 'b': [linear]})
    assert not _replayable([linear, plateau]) and not _replayable({'a': [plateau]})
