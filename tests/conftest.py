"""Shared test helpers: the tiny arch, a BN randomiser, synthetic data sets in the real
formats (written once per session) and the ways to run the command-line tools.

Tests marked ``slow`` start subprocesses or build full-size models; ``pytest -m 'not
slow'`` leaves them out for a quick loop, ``make test`` runs everything.
"""
import copy
import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Sequence

import pytest
import torch
from mmengine.config import Config
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm

from mmreplk.testing.synthetic import make_ade20k, make_cityscapes, make_coco

ROOT = Path(__file__).resolve().parents[1]

if os.environ.get('PYTEST_XDIST_WORKER'):
    # `make test` runs two workers on the two cores: one thread each (also in the tools
    # they start), or torch's thread pools oversubscribe the cores and small ops slow down
    # by orders of magnitude
    os.environ['OMP_NUM_THREADS'] = '1'
    torch.set_num_threads(1)

#: The one tiny RepLKNet of the wiring tests: two blocks in stage 1, distinct widths,
#: a small re-parameterization kernel. Full widths are used where exactness is the point.
TINY_ARCH = dict(layers=[1, 2, 1, 1], channels=[8, 16, 16, 24],
                 large_kernel_sizes=[7, 7, 5, 5], small_kernel=3, dw_ratio=1.0)


@pytest.fixture
def tiny_arch() -> dict:
    """A fresh copy of :data:`TINY_ARCH`."""
    return copy.deepcopy(TINY_ARCH)


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm random statistics and affine parameters (valid variances),
    so that folding them is not the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)


# --------------------------------------------------------------------------- tools
def tool_command(tool: str, *args: str, options: Dict[str, str] = None) -> List[str]:
    """The command line of ``tools/<tool>`` (python or bash), with ``--cfg-options``
    built from ``options``."""
    script = str(ROOT / 'tools' / tool)
    cmd = ['bash', script] if tool.endswith('.sh') else [sys.executable, script]
    cmd += list(args)
    if options:
        cmd += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    return cmd


def run_tool(tool: str, *args: str, options: Dict[str, str] = None,
             timeout: float = 300, env: dict = None,
             prefix: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run ``tools/<tool>`` from the repository root; output is captured as text."""
    return subprocess.run(
        list(prefix) + tool_command(tool, *args, options=options), cwd=ROOT,
        capture_output=True, text=True, timeout=timeout, env=env)


def import_tool(tool: str) -> ModuleType:
    """Import ``tools/<tool>`` as a module (in-process: cheaper than a subprocess)."""
    path = ROOT / 'tools' / tool
    spec = importlib.util.spec_from_file_location(f'tool_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_clear_error(result: subprocess.CompletedProcess, *phrases: str) -> None:
    """The tools' convention for a user mistake: exit status 1, one ``error:`` message
    on stderr naming the problem, no traceback."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1, result.stderr[-3000:]
    message = result.stderr[result.stderr.index('error: '):]
    for phrase in phrases:
        assert phrase in message, message


# --------------------------------------------------------------------------- configs
@functools.lru_cache(maxsize=None)
def load_shipped_config(name: str) -> Config:
    """``configs/<name>``, read once per session (reading one costs ~0.6 s: mmengine
    reloads pkg_resources for every mmseg:: / mmdet:: base)."""
    return Config.fromfile(str(ROOT / 'configs' / name))


# --------------------------------------------------------------------------- data
@pytest.fixture(scope='session')
def ade20k_root(tmp_path_factory) -> str:
    return make_ade20k(str(tmp_path_factory.mktemp('ade20k')), 16, 4, 64)


@pytest.fixture(scope='session')
def cityscapes_root(tmp_path_factory) -> str:
    return make_cityscapes(str(tmp_path_factory.mktemp('cityscapes')), 4, 2,
                           64)


@pytest.fixture(scope='session')
def coco_root(tmp_path_factory) -> str:
    from mmdet.datasets import CocoDataset
    return make_coco(str(tmp_path_factory.mktemp('coco')),
                     CocoDataset.METAINFO['classes'], 4, 2, 128)


def loader_options(root: str) -> Dict[str, str]:
    """``--cfg-options`` pointing every dataloader at ``root``, in-process."""
    opts = {}
    for split in ('train', 'val', 'test'):
        opts.update({
            f'{split}_dataloader.dataset.data_root': root,
            f'{split}_dataloader.num_workers': '0',
            f'{split}_dataloader.persistent_workers': 'False',
        })
    return opts


# --------------------------------------------------------------------------- tiny runs
def compact(value) -> str:
    return str(value).replace(' ', '')


TINY_BACKBONE = {
    'model.backbone.arch._delete_': 'True',
    **{f'model.backbone.arch.{k}': compact(v) for k, v in TINY_ARCH.items()},
    'model.backbone.with_cp': 'False',
    'model.backbone.init_cfg': 'None',
}
WIDTHS = TINY_ARCH['channels']


def seg_options(root: str, iters: int = 2) -> dict:
    """Tiny UPerNet at 64x64, ``iters`` iterations, validation at the end."""
    opts = dict(TINY_BACKBONE, **loader_options(root))
    opts.update({
        'model.decode_head.in_channels': compact(WIDTHS),
        'model.decode_head.channels': '16',
        'model.auxiliary_head.in_channels': str(WIDTHS[2]),
        'model.auxiliary_head.channels': '8',
        'model.data_preprocessor.size': '(64,64)',
        'train_dataloader.batch_size': '2',
        'train_dataloader.dataset.pipeline.2.scale': '(64,64)',
        'train_dataloader.dataset.pipeline.3.crop_size': '(64,64)',
        'val_dataloader.dataset.pipeline.1.scale': '(64,64)',
        'test_dataloader.dataset.pipeline.1.scale': '(64,64)',
        'train_cfg.max_iters': str(iters),
        'train_cfg.val_interval': str(iters),
        'default_hooks.checkpoint.interval': str(iters),
        'default_hooks.logger.interval': '1',
    })
    return opts


# --------------------------------------------------------------------------- a run
LEARN_CONFIG = 'configs/demo_upernet_replk-tiny_synthetic.py'
LEARN_ITERS = 90


@pytest.fixture(scope='session')
def learned_seg(ade20k_root, tmp_path_factory) -> subprocess.CompletedProcess:
    """A short tools/train.py run that learns (LEARN_CONFIG, the demo's
    small UPerNet, which inherits the ADE20K config, for LEARN_ITERS iterations at a
    fixed seed): it beats the majority-class baseline (14.9 % mIoU) by 10 points or
    more at the randomness seeds 0, 1, 2 (39 / 27 / 42 %; 60 iterations stayed within a
    point of it at seed 0 when the convolution's rounding changed). It validates at its
    end; its work dir is
    ``.work_dir`` and its ``iter_<LEARN_ITERS>.pth`` a real runner checkpoint."""
    work_dir = str(tmp_path_factory.mktemp('learned_seg'))
    warmup = LEARN_ITERS // 10
    opts = loader_options(ade20k_root)
    opts.update({
        'train_dataloader.batch_size': '8',
        'train_cfg.max_iters': str(LEARN_ITERS),
        'train_cfg.val_interval': str(LEARN_ITERS),
        'default_hooks.checkpoint.interval': str(LEARN_ITERS),
        'default_hooks.logger.interval': '10',
        'optim_wrapper.optimizer.lr': '3e-3',
        'param_scheduler.0.end': str(warmup),
        'param_scheduler.1.begin': str(warmup),
        'param_scheduler.1.end': str(LEARN_ITERS),
        'randomness.seed': '0',
    })
    train = run_tool('train.py', LEARN_CONFIG, '--work-dir', work_dir, options=opts,
                     timeout=900)
    assert train.returncode == 0, train.stderr[-4000:]
    train.work_dir = work_dir
    return train
