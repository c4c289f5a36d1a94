"""Building the mmengine runner of train.py and test.py: the host's runner, the
distributed start-up, and the engine's hooks that check what the runner loads."""
import copy

from mmengine.config import Config
from mmengine.runner import Runner

from .config import host_scope
from .dist import collective_timeout, init_cpu_distributed, watch_ranks


def with_engine_hooks(cfg: Config, strict: bool = True) -> Config:
    """``cfg`` with the engine's hooks in ``custom_hooks``: a checkpoint the runner
    cannot use is one line (:class:`~mmreplk.engine.CheckpointCheckHook`; ``strict``:
    it must also match the model), and the lr schedule of a resumed run is rebuilt from
    the config (:class:`~mmreplk.engine.ScheduleReplayHook`)."""
    cfg = copy.deepcopy(cfg)
    hooks = list(cfg.get('custom_hooks') or [])
    hooks += [dict(type='mmreplk.CheckpointCheckHook', filename=cfg.get('load_from'),
                   config=cfg.filename, strict=strict),
              dict(type='mmreplk.ScheduleReplayHook')]
    cfg.custom_hooks = hooks
    return cfg


def build_runner(cfg: Config, strict: bool = True) -> Runner:
    """Build the runner: ``Runner.from_cfg``, or the host's ``RUNNERS`` when the config
    names a ``runner_type``, with :func:`with_engine_hooks`. mmdet also gets its dynamo
    cache limit set up, as its own tools do. A distributed run starts its process group
    (:mod:`.dist`: the collective timeout, CPU start-up) and this rank's heartbeat."""
    scope = host_scope(cfg)
    collective_timeout(cfg)  # checked before any process group starts
    init_cpu_distributed(cfg)
    if scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo
        setup_cache_size_limit_of_dynamo()
    cfg = with_engine_hooks(cfg, strict)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        if scope == 'mmseg':
            from mmseg.registry import RUNNERS
        else:
            from mmdet.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    watch_ranks(cfg)
    return runner
