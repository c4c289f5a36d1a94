"""Config checks run before a runner is built: a misspelt key or type anywhere in the
config, a ``--cfg-options`` key that cannot take effect, a schedule that does not fit the
training length. Tool logic (see ``_common``); nothing is built, so the checks take well
under a second.

* :func:`check_config_keys`: every ``type=`` dict the runner builds (model and its parts,
  datasets and their transforms, samplers, optimizer wrapper and optimizer, schedulers,
  hooks, loops, evaluators, visualizer) is resolved in its registry under the config's
  scope, and its keys are bound to the class's arguments; a key the class does not take
  is a :class:`ConfigError` naming its path and the closest argument (``config error:
  model.backbon is not an argument of EncoderDecoder (did you mean model.backbone?)``).
  Layer settings (``norm_cfg``, ``act_cfg``, ...) and a detector's ``train_cfg`` /
  ``test_cfg`` are not checked (their builders have conventions of their own).
  Arguments that a class passes on through ``**kwargs`` are followed into its base
  classes; where the chain ends in ``**kwargs`` (a hook passing options to
  ``torch.save``), only near-misses of declared arguments are errors.
* :func:`check_cfg_options`: a ``--cfg-options`` key whose first part is not a runner
  setting (``max_iters=4``) sets a variable that the config file read when it was
  loaded, so it changes nothing: warned, naming the settings it may have meant.
* :func:`fit_schedule`: ``--cfg-options train_cfg.max_iters=N`` (or ``max_epochs``)
  rescales the config's ``param_scheduler`` to the new length (one log line), and a
  schedule that still does not fit (a decay that ends after training, a warm-up longer
  than it) is a :class:`ConfigError`.
"""
import contextlib
import difflib
import inspect
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.registry import Registry
from mmengine.runner import Runner

from mmreplk.errors import ConfigError

# The runner's own arguments; any other top-level name is a variable of the config file.
RUNNER_KEYS = set(inspect.signature(Runner.__init__).parameters) - {'self'}
# What mmengine and the tools read besides: config-file machinery, TTA, the CLI.
TOOL_KEYS = {'custom_imports', 'tta_model', 'tta_pipeline', 'runner_type', 'compile',
             'strategy', 'filename'}


def _registries() -> Dict[str, Registry]:
    from mmengine import registry as r
    return {name: getattr(r, name) for name in (
        'MODELS', 'TASK_UTILS', 'DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS', 'OPTIM_WRAPPERS',
        'OPTIMIZERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'HOOKS', 'LOOPS',
        'METRICS', 'EVALUATOR', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS',
        'WEIGHT_INITIALIZERS')}


# Where each section's ``type=`` dicts are registered, in the order they are tried.
_SECTIONS = {
    'model': ('MODELS', 'TASK_UTILS'),
    'train_dataloader': ('DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS'),
    'val_dataloader': ('DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS'),
    'test_dataloader': ('DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS'),
    'optim_wrapper': ('OPTIM_WRAPPERS', 'OPTIMIZERS', 'OPTIM_WRAPPER_CONSTRUCTORS'),
    'param_scheduler': ('PARAM_SCHEDULERS', ),
    'default_hooks': ('HOOKS', ),
    'custom_hooks': ('HOOKS', ),
    'train_cfg': ('LOOPS', ),
    'val_cfg': ('LOOPS', ),
    'test_cfg': ('LOOPS', ),
    'val_evaluator': ('METRICS', 'EVALUATOR'),
    'test_evaluator': ('METRICS', 'EVALUATOR'),
    'visualizer': ('VISUALIZERS', 'VISBACKENDS'),
    'log_processor': ('LOG_PROCESSORS', ),
}
# Parts built without a registry (mmcv.ops classes looked up by name).
_UNREGISTERED = {'roi_layer'}
#: Every section the runner builds.
SECTIONS = tuple(_SECTIONS)
# Keys a builder consumes before the class sees the rest.
_BUILDER_KEYS = {
    'type', 'init_cfg', '_scope_', 'constructor', 'paramwise_cfg', 'priority',
    'collate_fn', 'sampler', 'batch_sampler', 'dataset', 'batch_size', 'num_workers',
    'persistent_workers', 'pin_memory', 'drop_last', 'worker_init_fn', 'prefetch_factor',
    'timeout', 'generator', 'multiprocessing_context', 'shuffle', 'convert_to_iter_based',
    'pin_memory_device', 'in_order'}


def _close(word: str, options: Sequence[str]) -> Optional[str]:
    found = difflib.get_close_matches(word, list(options), n=1, cutoff=0.75)
    return found[0] if found else None


def accepted_arguments(cls: type) -> Tuple[List[str], bool]:
    """The keyword arguments ``cls`` takes, following ``**kwargs`` into the base
    classes; and whether the chain still ends in ``**kwargs`` (anything goes)."""
    names: List[str] = []
    for klass in (cls.__mro__ if inspect.isclass(cls) else [cls]):
        init = klass.__init__ if inspect.isclass(klass) else klass
        if inspect.isclass(klass) and '__init__' not in vars(klass):
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return names, True
        names += [p.name for p in params if p.kind not in (p.VAR_POSITIONAL,
                                                           p.VAR_KEYWORD, )
                  and p.name != 'self']
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names, False
        if not inspect.isclass(klass) or klass is object:
            break
    return names, True


def _resolve(type_name: Any, path: str, registries: Sequence[Registry]) -> Any:
    if not isinstance(type_name, str):
        return type_name  # a class or function given directly
    for registry in registries:
        found = registry.get(type_name)
        if found is not None:
            return found
    known = sorted({k for reg in registries for k in _all_names(reg)})
    near = _close(type_name.split('.')[-1], known)
    raise ConfigError(f'config error: {path}.type {type_name!r} is not registered'
                      + (f' (did you mean {near!r}?)' if near else '')
                      + " (is the plugin in custom_imports?)")


def _all_names(registry: Registry) -> Iterator[str]:
    while registry is not None:
        yield from registry.module_dict
        registry = registry.parent


def _check_dict(node: dict, path: str, registries: Sequence[Registry]) -> None:
    if 'type' in node:
        cls = _resolve(node['type'], path, registries)
        names, open_ended = accepted_arguments(cls)
        for key in node:
            if key.startswith('_') or key in _BUILDER_KEYS or key in names:
                continue
            near = _close(key, names)
            if open_ended and near is None:
                continue
            name = getattr(cls, '__name__', str(cls))
            raise ConfigError(f'config error: {path}.{key} is not an argument of {name}'
                              + (f' (did you mean {path}.{near}?)' if near else
                                 f' (it takes: {", ".join(names)})'))
    for key, value in node.items():
        # layer settings (norm_cfg, act_cfg, ...) and a model's train_cfg / test_cfg are
        # read by builders with conventions of their own (requires_grad, inplace, ...)
        if not key.endswith('_cfg') and key not in _UNREGISTERED:
            _walk(value, f'{path}.{key}', registries)


def _walk(node: Any, path: str, registries: Sequence[Registry]) -> None:
    if isinstance(node, dict):
        _check_dict(node, path, registries)
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            _walk(item, f'{path}.{i}', registries)


def check_config_keys(cfg: Config, sections: Sequence[str] = SECTIONS) -> None:
    """Raise :class:`ConfigError` at the first key or type of ``sections`` (default: all
    that the runner builds) that would be rejected."""
    scope = cfg.get('default_scope')
    with contextlib.ExitStack() as stack:
        # the registries of the config's scope (mmseg's, mmdet's), as the builders use
        registries = {name: stack.enter_context(reg.switch_scope_and_registry(scope))
                      for name, reg in _registries().items()}
        for section in sections:
            value = cfg.get(section)
            if value is None:
                continue
            regs = [registries[n] for n in _SECTIONS[section]]
            if section == 'train_cfg' and isinstance(value, dict) and 'type' not in value:
                continue  # mmengine picks the loop from by_epoch
            _walk(value, section, regs)


def _paths(node: Any, prefix: str = '') -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f'{prefix}.{key}' if prefix else str(key)
            yield path
            yield from _paths(value, path)
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _paths(item, f'{prefix}.{i}')


def check_cfg_options(cfg: Config, cfg_options: Optional[dict]) -> List[str]:
    """Warnings (also printed) for ``--cfg-options`` keys that cannot take effect: a
    top-level name that is not a runner setting."""
    warnings = []
    runner_part = {k: cfg[k] for k in cfg if k in RUNNER_KEYS}
    for key in cfg_options or {}:
        top = key.split('.')[0]
        if top in RUNNER_KEYS or top in TOOL_KEYS:
            continue
        leaf = key.split('.')[-1]
        meant = [p for p in _paths(runner_part) if p.split('.')[-1] == leaf][:3]
        what = ('a variable of the config file, read when the file was loaded'
                if top in cfg else 'not a setting the runner reads')
        hint = f' Did you mean {" or ".join(meant)}?' if meant else ''
        warnings.append(f'warning: --cfg-options {key}: {top!r} is {what}; setting it '
                        f'here changes nothing.{hint}')
    for line in warnings:
        print_log(line, logger='current', level=30)
    return warnings


def _length(cfg: Config) -> Tuple[Optional[str], Optional[int]]:
    """``('iters', N)`` or ``('epochs', N)``: how long training runs."""
    train = cfg.get('train_cfg') or {}
    if 'max_iters' in train:
        return 'iters', train['max_iters']
    if 'max_epochs' in train:
        return 'epochs', train['max_epochs']
    return None, None


def _scaled(scheduler: dict, ratio: float) -> dict:
    out = dict(scheduler)
    for key in ('begin', 'end', 'T_max'):
        if isinstance(out.get(key), (int, float)) and out[key] < 2**31:
            out[key] = max(int(round(out[key] * ratio)), 1 if key != 'begin' else 0)
    if 'milestones' in out:
        out['milestones'] = [max(int(round(m * ratio)), 1) for m in out['milestones']]
    return out


def _by_unit(scheduler: dict, unit: str) -> bool:
    """Whether ``scheduler`` counts in the training loop's unit."""
    return bool(scheduler.get('by_epoch', True)) == (unit == 'epochs')


def training_length(cfg: Config) -> Optional[int]:
    """``train_cfg.max_iters`` or ``max_epochs`` (None if neither is set)."""
    return _length(cfg)[1]


def fit_schedule(cfg: Config, before: Optional[int], cfg_options: Optional[dict]) -> None:
    """Rescale ``cfg.param_scheduler`` when ``--cfg-options`` changed the training length
    from ``before`` (:func:`training_length` of the config file) but not the schedule;
    then raise :class:`ConfigError` if a scheduler counted in the loop's unit does not
    fit the training length."""
    unit, length = _length(cfg)
    schedulers = cfg.get('param_scheduler')
    if unit is None or not schedulers:
        return
    schedulers = [schedulers] if isinstance(schedulers, dict) else list(schedulers)
    touched = any(k.startswith('param_scheduler') for k in cfg_options or {})
    if before and before != length and not touched:
        ratio = length / before
        new = [_scaled(s, ratio) if _by_unit(s, unit) else s for s in schedulers]
        spans = ', '.join(f'{s["type"]} {s.get("begin", 0)}-{s.get("end")} -> '
                          f'{n.get("begin", 0)}-{n.get("end")}'
                          for s, n in zip(schedulers, new) if _by_unit(s, unit))
        print_log(f'train_cfg.max_{unit} {before} -> {length}: param_scheduler rescaled '
                  f'to the new length ({spans}); set param_scheduler in --cfg-options to '
                  'choose it yourself', logger='current')
        cfg.param_scheduler = [ConfigDict(s) for s in new]
        schedulers = new
    for i, s in enumerate(schedulers):
        if not _by_unit(s, unit):
            continue
        begin, end = s.get('begin', 0), s.get('end', 0)
        if begin >= length or (end < 2**31 and end > length + 1):
            raise ConfigError(
                f'config error: param_scheduler.{i} ({s["type"]}) runs from {begin} to '
                f'{end} {unit} but training stops after {length}: set '
                f'param_scheduler.{i}.end (and .begin) with --cfg-options, or change only '
                f'train_cfg.max_{unit} and mmreplk rescales the schedule')


__all__ = ['SECTIONS', 'accepted_arguments', 'check_cfg_options', 'check_config_keys', 'fit_schedule',
           'training_length']
