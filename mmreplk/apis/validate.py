"""Config checks run before a runner is built: a misspelt key or type anywhere in the
config, a ``--cfg-options`` key that cannot take effect, a schedule that does not fit the
training length. Nothing is built, so the checks take well
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
import collections.abc
import contextlib
import difflib
import functools
import inspect
import re
import typing
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.optim.scheduler.param_scheduler import INF as FOREVER  # 'no end'
from mmengine.registry import Registry
from mmengine.runner import Runner

from mmreplk.engine.optimizers import check_optimizer_constructor
from mmreplk.errors import ConfigError
from mmreplk.models.arch import resolve_arch
from mmreplk.ops.dwconv import IMPLS


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


@functools.lru_cache(maxsize=None)
def accepted_arguments(cls: type) -> Tuple[Tuple[str, ...], bool]:
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
            return tuple(names), True
        names += [p.name for p in params if p.kind not in (p.VAR_POSITIONAL,
                                                           p.VAR_KEYWORD, )
                  and p.name != 'self']
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return tuple(names), False
        if not inspect.isclass(klass) or klass is object:
            break
    return tuple(names), True


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


_BASIC = {int: 'an int', float: 'a number', bool: 'a bool', str: 'a string',
          type(None): 'None'}


@functools.lru_cache(maxsize=None)
def annotations(cls: Any) -> Dict[str, Any]:
    """The annotated keyword arguments of ``cls`` (its ``__init__``, or the function),
    through its base classes; annotations that cannot be resolved are left out."""
    hints: Dict[str, Any] = {}
    for klass in reversed(cls.__mro__ if inspect.isclass(cls) else [cls]):
        init = klass.__init__ if inspect.isclass(klass) else klass
        if inspect.isclass(klass) and '__init__' not in vars(klass):
            continue
        try:
            hints.update({k: v for k, v in typing.get_type_hints(init).items()
                          if k != 'return'})
        except Exception:  # unresolvable forward references: not checked
            continue
    return hints


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (a config value) fits the annotation ``hint``: basic types,
    unions, literals, sequences of them, and a plain value where a class goes (a
    dict, where a class is built from it, always fits)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (int, float) or hint is bool:
        if isinstance(value, bool):
            return hint is bool
        return isinstance(value, int) if hint is int else (
            isinstance(value, (int, float)) if hint is float else False)
    if hint in (str, type(None)):
        return isinstance(value, hint)
    if origin is typing.Union:
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin in (tuple, list, collections.abc.Sequence) and args:
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and Ellipsis not in args:
            return len(value) == len(args) and all(map(_matches, value, args))
        return all(_matches(v, args[0]) for v in value)
    if inspect.isclass(hint) and isinstance(value, (str, int, float, list, tuple)):
        return isinstance(value, hint)  # e.g. a string where a Tensor or dict goes
    return True


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _BASIC:
        return _BASIC[hint]
    if origin is typing.Union:
        return ' or '.join(_describe(a) for a in args)
    if origin is typing.Literal:
        return 'one of ' + ', '.join(map(repr, args))
    if origin in (tuple, list, collections.abc.Sequence):
        return f'a sequence of {", ".join(_describe(a) for a in args if a is not Ellipsis)}'
    return getattr(hint, '__name__', str(hint))


def _check_dict(node: dict, path: str, registries: Sequence[Registry]) -> None:
    if 'type' in node:
        cls = _resolve(node['type'], path, registries)
        names, open_ended = accepted_arguments(cls)
        hints = annotations(cls)
        for key in node:
            if key in hints and not _matches(node[key], hints[key]):
                raise ConfigError(f'config error: {path}.{key}={node[key]!r} is not '
                                  f'{_describe(hints[key])} (an argument of '
                                  f'{getattr(cls, "__name__", cls)})')
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


def _items(node: Any, prefix: str = '') -> Iterator[Tuple[str, Any]]:
    """``(path, value)`` of every dict entry and list item below ``node``, depth first
    (``'model.backbone.arch'``, ``'train_dataloader.dataset.pipeline.3.crop_size.0'``)."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(
        node, (list, tuple)) else ()
    for key, value in children:
        path = f'{prefix}.{key}' if prefix else str(key)
        yield path, value
        yield from _items(value, path)


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
        meant = [p for p, _ in _items(runner_part) if p.split('.')[-1] == leaf][:3]
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
        if isinstance(out.get(key), (int, float)) and out[key] < FOREVER:
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
    if unit is None or not schedulers or not _int(length) or length < 1:
        return  # no length to fit, or a wrong one (check_values names it)
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
        if begin >= length or (end < FOREVER and end > length + 1):
            raise ConfigError(
                f'config error: param_scheduler.{i} ({s["type"]}) runs from {begin} to '
                f'{end} {unit} but training stops after {length}: set '
                f'param_scheduler.{i}.end (and .begin) with --cfg-options, or change only '
                f'train_cfg.max_{unit} and mmreplk rescales the schedule')
    _check_schedule_reaches_the_end(schedulers, unit, length)


def _ends_at_zero(scheduler: dict) -> bool:
    """Whether the scheduler leaves the value at 0 after its end."""
    kind = str(scheduler.get('type', ''))
    if kind.startswith(('PolyLR', 'CosineAnnealingLR', 'PolyParamScheduler',
                        'CosineAnnealingParamScheduler')):
        return not scheduler.get('eta_min') and not scheduler.get('eta_min_ratio')
    if kind.startswith('LinearLR'):
        return scheduler.get('end_factor', 1.0) == 0
    return False


def _check_schedule_reaches_the_end(schedulers: List[dict], unit: str,
                                    length: int) -> None:
    """Raise :class:`ConfigError` if the schedule brings the lr to 0 before training
    ends: every later iteration would train at lr 0."""
    counted = [(i, s) for i, s in enumerate(schedulers) if _by_unit(s, unit)
               and s.get('end', FOREVER) < FOREVER]
    if not counted:
        return
    i, last = max(counted, key=lambda item: item[1]['end'])
    if last['end'] < length and _ends_at_zero(last):
        raise ConfigError(
            f'config error: param_scheduler.{i} ({last["type"]}) brings the lr to 0 at '
            f'{last["end"]} {unit} but training runs to {length}: the last '
            f'{length - last["end"]} {unit} would train at lr 0; set '
            f'param_scheduler.{i}.end={length}')


def _backbone_channels(model: dict) -> Optional[List[int]]:
    """The channels of each output of a RepLKNet backbone, in output order, or None for
    another backbone (or an arch the model check reports itself)."""
    backbone = model.get('backbone') or {}
    if not str(backbone.get('type', '')).endswith('RepLKNet'):
        return None
    try:
        channels = resolve_arch(backbone.get('arch', '31B'))['channels']
        indices = backbone.get('out_indices', (0, 1, 2, 3))
        indices = [indices] if isinstance(indices, int) else list(indices)
        return [channels[i % len(channels)] for i in sorted({i % len(channels)
                                                            for i in indices})]
    except (ConfigError, TypeError, IndexError):
        return None


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def _expected(outputs: List[int], in_index: Any) -> Any:
    if isinstance(in_index, (list, tuple)):
        return [outputs[i] for i in in_index]
    return outputs[in_index]


def check_channels(cfg: Config) -> None:
    """Raise :class:`ConfigError` if the heads' (mmseg) or the neck's (mmdet)
    ``in_channels`` do not chain with a RepLKNet backbone's outputs (the first forward
    would end in a shape mismatch deep inside torch)."""
    model = cfg.get('model') or {}
    outputs = _backbone_channels(model)
    if outputs is None:
        return
    parts = [('neck', model.get('neck'))]
    for name in ('decode_head', 'auxiliary_head'):
        heads = model.get(name)
        for i, head in enumerate(heads if isinstance(heads, list) else [heads]):
            parts.append((f'{name}.{i}' if isinstance(heads, list) else name, head))
    for name, part in parts:
        if not isinstance(part, dict) or 'in_channels' not in part:
            continue
        given = part['in_channels']
        try:
            wanted = (_expected(outputs, part.get('in_index', -1)) if name != 'neck'
                      else outputs)
        except (IndexError, TypeError):
            raise ConfigError(f'config error: model.{name}.in_index='
                              f'{part.get("in_index")!r} names no output of the backbone '
                              f'({len(outputs)} outputs)') from None
        if _listed(given) != _listed(wanted):
            raise ConfigError(f'config error: model.{name}.in_channels={given!r} but the '
                              f'RepLKNet backbone gives {wanted!r} there (channels '
                              f'{outputs} at its out_indices); set model.{name}.'
                              f'in_channels={wanted!r}')


def check_wiring(cfg: Config, sections: Sequence[str] = SECTIONS) -> None:
    """The checks across parts of the config: the heads' or neck's ``in_channels``
    against a RepLKNet's outputs (``model``), and a host's layer-decay constructor that
    cannot group a RepLKNet (``optim_wrapper``)."""
    if 'model' in sections:
        check_channels(cfg)
    if 'optim_wrapper' in sections:
        check_optimizer_constructor(cfg)


#: Values a consumer needs in a range that no annotation says, checked on every config
#: before the runner is built: (path pattern, test, what the value must be).
_RANGES = [
    (r'(train|val|test)_dataloader\.batch_size', lambda v: _int(v) and v >= 1,
     'a whole number >= 1'),
    (r'(train|val|test)_dataloader\.num_workers', lambda v: _int(v) and v >= 0,
     'a whole number >= 0'),
    (r'train_cfg\.(max_iters|max_epochs|val_interval|val_begin)',
     lambda v: _int(v) and v >= 1, 'a whole number >= 1'),
    (r'optim_wrapper(\.\w+)?\.optimizer\.(lr|weight_decay)', lambda v: _number(v) and v >= 0,
     'a number >= 0'),
    (r'.*\.(crop_size|size|scale|img_scale)(\.\d+)?', lambda v: _number(v) and v > 0,
     'a positive number (or a pair of them)'),
    (r'model\..*\.num_classes', lambda v: _int(v) and v >= 1, 'a whole number >= 1'),
    (r'default_hooks\.\w+\.interval', lambda v: _int(v) and v != 0,
     'a whole number other than 0'),
    (r'model\.backbone\.dwconv_impl', lambda v: v is None or v in IMPLS,
     f'None or one of {", ".join(IMPLS)}'),
]


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_values(cfg: Config, sections: Sequence[str] = SECTIONS) -> None:
    """Raise :class:`ConfigError` at the first value of ``sections`` outside the range
    its consumer needs (:data:`_RANGES`: a batch size of 0, a negative crop, an lr given
    as a string, ``val_interval=0``, ``max_iters=3.5``, an unknown ``dwconv_impl``)."""
    for section in sections:
        for path, value in _items(cfg.get(section), section):
            for pattern, test, what in _RANGES:
                if isinstance(value, (dict, list, tuple)) or not re.fullmatch(pattern, path):
                    continue
                if not test(value):
                    raise ConfigError(f'config error: {path}={value!r} must be {what}')


__all__ = ['SECTIONS', 'accepted_arguments', 'annotations', 'check_cfg_options',
           'check_channels', 'check_config_keys', 'check_values', 'check_wiring', 'fit_schedule', 'training_length']
