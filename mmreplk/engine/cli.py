"""What ``tools/train.py`` and ``tools/test.py`` share: config loading, the
choice of the host (mmseg or mmdet) and one-line errors for bad input."""
import os.path as osp
import sys
from contextlib import contextmanager
from typing import Iterator, List, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.runner import Runner

HOSTS = ('mmseg', 'mmdet')


def fail(message: str) -> None:
    """Print ``error: message`` to stderr and exit with status 2."""
    print(f'error: {message}', file=sys.stderr)
    sys.exit(2)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the preflight checks' exceptions into one-line errors."""
    try:
        yield
    except (FileNotFoundError, TypeError, ValueError, KeyError) as e:
        fail(str(e).strip('"\''))


def load_config(path: str, cfg_options: Optional[dict],
                work_dir: Optional[str], launcher: str) -> Config:
    """Load ``path``, merge ``--cfg-options`` and set the work dir.

    The work dir is, in order: ``--work-dir``, the config's ``work_dir``,
    ``./work_dirs/<config name>`` (as mmseg and mmdet do).
    """
    if not osp.isfile(path):
        fail(f'config file not found: {path}')
    with clear_errors():
        cfg = Config.fromfile(path)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    host_scope(cfg)
    return cfg


def host_scope(cfg: Config) -> str:
    """The config's ``default_scope``; exits unless it is mmseg or mmdet."""
    scope = cfg.get('default_scope')
    if scope not in HOSTS:
        fail(f"the config's default_scope is {scope!r}; these tools run "
             f"{' and '.join(HOSTS)} configs (inherit their default runtime)")
    return scope


def build_runner(cfg: Config) -> Runner:
    """Build the runner: ``Runner.from_cfg``, or the host's ``RUNNERS`` when
    the config names a ``runner_type``. mmdet also gets its dynamo cache
    limit set up, as its own tools do."""
    scope = host_scope(cfg)
    init_cpu_distributed(cfg)
    if scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo
        setup_cache_size_limit_of_dynamo()
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    if scope == 'mmseg':
        from mmseg.registry import RUNNERS
    else:
        from mmdet.registry import RUNNERS
    return RUNNERS.build(cfg)


def splits_of(cfg: Config, names: List[str]) -> tuple:
    """The dataloader splits among ``names`` the config actually uses."""
    return tuple(n for n in names
                 if cfg.get(f'{n}_dataloader') and cfg.get(f'{n}_cfg'))


def init_cpu_distributed(cfg: Config) -> None:
    """Start the process group of a ``--launcher pytorch`` run without CUDA.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device``, which a CPU-only
    torch lacks; the runner skips it when the group already exists. The
    backend must be gloo (``env_cfg.dist_cfg.backend``). DDP on CPU takes no
    ``device_ids``, so the model wrapper gets ``device_ids=None``.
    """
    if cfg.launcher != 'pytorch' or torch.cuda.is_available() or (
            dist.is_initialized()):
        return
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend')
    if backend != 'gloo':
        fail(f'distributed training without CUDA needs the gloo backend, '
             f'the config has {backend!r}: add --cfg-options '
             'env_cfg.dist_cfg.backend=gloo')
    dist.init_process_group(backend='gloo')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel')
    cfg.model_wrapper_cfg.setdefault('device_ids', None)
