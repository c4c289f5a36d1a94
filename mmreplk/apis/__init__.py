"""The runtime that the tools (and a notebook) call: reading and checking a config,
checking a data set, building the runner with strict and safe checkpoint loading,
work-dir and checkpoint preflight, distributed start-up, and the command-line boundary.

Importing it switches :mod:`mmreplk.engine` on (safe checkpoint loading, atomic
checkpoints), as every tool needs::

    from mmreplk.apis import check_config, check_dataset, load_config
    cfg = load_config('mmreplk::upernet_replk31b_ade20k.py')
    check_config(cfg)
    print(check_dataset(cfg, ('train', 'val')))
"""
from typing import Sequence

from mmengine.config import Config

import mmreplk.engine  # noqa: F401  the switch: safe checkpoint loading for every tool

from .cli import (add_cfg_options, add_model_args, non_negative_int, parse_arch,
                  parse_runner_args, positive_int, run)
from .config import HOSTS, host_scope, load_config, load_run_config, splits_of
from .datacheck import check_data_sets
from .outputs import add_force, check_outputs
from .preflight import check_checkpoint, check_data, check_pretrained, dataset_cfgs
from .runner import build_runner, with_engine_hooks
from .validate import SECTIONS, check_config_keys, check_values, check_wiring
from .workdir import check_work_dir, lock_work_dir


def check_config(cfg: Config, sections: Sequence[str] = SECTIONS) -> None:
    """Raise :class:`~mmreplk.errors.ConfigError` at the first key, type or value of
    ``sections`` (default: every part the runner builds) that would be rejected."""
    check_config_keys(cfg, sections)
    check_values(cfg, sections)
    check_wiring(cfg, sections)


def check_dataset(cfg: Config, splits: Sequence[str], full: bool = False,
                  progress: bool = False) -> str:
    """Check that the data sets of ``splits`` exist (:class:`DataNotFoundError` naming
    how to get them) and that their files pair, decode and hold valid labels
    (:class:`DataError`, one line per kind of problem; ``full`` decodes every file, else
    a sample). Returns a one-line summary."""
    check_data(cfg, tuple(splits))
    return check_data_sets(cfg, splits, full=full, progress=progress)


__all__ = [
    'HOSTS', 'add_cfg_options', 'add_force', 'add_model_args', 'build_runner',
    'check_checkpoint', 'check_config', 'check_data', 'check_data_sets',
    'check_dataset', 'check_outputs', 'check_pretrained', 'check_work_dir',
    'dataset_cfgs', 'host_scope', 'load_config', 'load_run_config', 'lock_work_dir',
    'non_negative_int', 'parse_arch', 'parse_runner_args', 'positive_int', 'run',
    'splits_of', 'with_engine_hooks'
]
