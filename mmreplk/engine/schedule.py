"""The learning-rate schedule of a resumed run comes from the config, not the checkpoint.

mmengine restores each parameter scheduler's whole state on resume, its ``begin`` /
``end`` included, and the optimizer's current lr: a run resumed with a longer
``train_cfg.max_iters`` (and a schedule rescaled to it) keeps the old ``end``, reaches it
and then trains at ``eta_min`` (0 for the shipped PolyLR) for every new iteration.
:class:`ScheduleReplayHook` instead

1. drops the schedulers' saved state from the checkpoint and puts every parameter
   group's scheduled values (lr, momentum, ...) back at their initial values;
2. before training, rebuilds the schedulers from the config and replays them through the
   steps already taken (iteration by iteration, epoch-based ones at each epoch's end,
   as :class:`mmengine.hooks.ParamSchedulerHook` steps them), so that the first new
   iteration runs at exactly the value the config's schedule gives there;
3. logs the lr of the first iteration after the start, with a warning when it is 0.

Schedulers that need metrics (``ReduceOnPlateau``) cannot be replayed: with one of them
the saved state is restored as mmengine does, with a warning.
"""
import warnings
from typing import Any, List

from mmengine.hooks import Hook
from mmengine.optim import ReduceOnPlateauParamScheduler

from mmreplk.registry import HOOKS

from .compat import resume_request


def _as_lists(schedulers: Any) -> List[list]:
    """The runner's schedulers (a list, or a dict of lists per optimizer) as lists."""
    if isinstance(schedulers, dict):
        return list(schedulers.values())
    return [schedulers]


def _replayable(schedulers: Any) -> bool:
    """Whether every built scheduler can be replayed without metrics."""
    return not any(isinstance(s, ReduceOnPlateauParamScheduler)
                   for group in _as_lists(schedulers) for s in group)


@HOOKS.register_module()
class ScheduleReplayHook(Hook):
    """Rebuild the parameter schedule from the config on every start, resume included
    (see the module docstring). ``tools/train.py`` adds it."""

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._replay = False
        self._first_iter = True

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not resume_request(runner)[0] or 'param_schedulers' not in checkpoint \
                or not runner.cfg.get('param_scheduler'):
            return  # nothing to rebuild from (a runner built without its config)
        if not _replayable(runner.param_schedulers):
            runner.logger.warning('param_scheduler has a metric-driven scheduler: its '
                                  'saved state is resumed as it is, not rebuilt from '
                                  'the config')
            return
        del checkpoint['param_schedulers']
        for group in (checkpoint.get('optimizer') or {}).get('param_groups', []):
            for key in [k for k in group if k.startswith('initial_')]:
                group[key[len('initial_'):]] = group[key]
        self._replay = True

    def before_train(self, runner) -> None:
        if not self._replay:
            return
        schedulers = runner.build_param_scheduler(runner.cfg.param_scheduler)
        steps, epoch_length = runner.iter, None
        lists = _as_lists(schedulers)
        if any(s.by_epoch for group in lists for s in group):
            epoch_length = len(runner.train_dataloader)
        with warnings.catch_warnings():  # mmengine's step-order warning: no optimizer step
            warnings.simplefilter('ignore')
            for i in range(steps):
                for group in lists:
                    for s in group:
                        if not s.by_epoch:
                            s.step()
                if epoch_length and (i + 1) % epoch_length == 0:
                    for group in lists:
                        for s in group:
                            if s.by_epoch:
                                s.step()
        runner.param_schedulers = schedulers
        runner.logger.info(f'param_scheduler rebuilt from the config and replayed through '
                           f'{steps} iterations')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if not self._first_iter:
            return
        self._first_iter = False
        lrs = runner.optim_wrapper.get_lr()
        values = [v for group in lrs.values() for v in group]
        text = ', '.join(f'{k}={v[0]:.6g}' for k, v in lrs.items())
        runner.logger.info(f'first iteration after the start ({runner.iter + 1}): {text}')
        if values and max(values) == 0:
            runner.logger.warning(f'the lr is 0 at iteration {runner.iter + 1}: the '
                                  'config\'s param_scheduler gives 0 here, so this '
                                  'iteration changes no weight')
