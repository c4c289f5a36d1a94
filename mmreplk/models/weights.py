"""Reading RepLKNet weights from every published format, with strict, explained loading.

Formats recognised (docs/design.md, "Checkpoint formats"):

* ``official``: flat state dict (maybe wrapped in ``model`` / ``state_dict``), classifier
  at ``norm.*`` / ``head.*``; training or merged (``lkb_reparam``) form;
* ``mmpretrain``: ``backbone.*`` with the classifier at ``head.fc.*`` and its norm at
  ``backbone.stages.<last>.norm.*``;
* ``downstream``: mmseg 0.x / mmdet 2.x / mmreplk checkpoints, ``backbone.*`` beside
  ``decode_head.*``, ``neck.*``, ...

:func:`extract_replknet_state_dict` turns any of them into the canonical flat key set of
:class:`~mmreplk.models.RepLKNetClassifier` (classifier keys kept when present);
:func:`load_replknet_state_dict` loads that strictly into a backbone or classifier.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from torch import Tensor

from mmreplk.errors import CheckpointError
from mmreplk.utils import load_checkpoint_file
from .arch import (CLASSIFIER_PREFIXES, STAGE_NORM, STEM_WEIGHT, arch_name, infer_arch,
                   is_merged)
from .reparam import reparameterize_state_dict

StateDict = Dict[str, Tensor]


@dataclass
class ConversionReport:
    """What :func:`extract_replknet_state_dict` / :func:`load_replknet_state_dict` did."""
    source_format: str
    merged: bool
    num_tensors: int = 0
    dropped: List[str] = field(default_factory=list)   # present, but not for this model
    fresh: List[str] = field(default_factory=list)     # kept at their initial value
    folded: bool = False                                 # re-parameterized on loading

    def summary(self) -> str:
        parts = [f'{self.source_format} checkpoint'
                 f'{" (merged form)" if self.merged else ""}: '
                 f'{self.num_tensors} tensors loaded']
        if self.folded:
            parts.append('re-parameterized to the deploy form')
        if self.dropped:
            parts.append(f'{len(self.dropped)} unused ({_short(self.dropped)})')
        if self.fresh:
            parts.append(f'{len(self.fresh)} freshly initialized ({_short(self.fresh)})')
        return '; '.join(parts)


def _short(keys: List[str], n: int = 6) -> str:
    return ', '.join(keys[:n]) + (f', ... (+{len(keys) - n})' if len(keys) > n else '')


def _unwrap(ckpt: dict) -> StateDict:
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'Expected a checkpoint dict, got {type(ckpt).__name__}')
    for wrapper in ('state_dict', 'model', 'module'):
        if isinstance(ckpt.get(wrapper), dict):
            ckpt = ckpt[wrapper]
            break
    sd = {k[len('module.'):] if k.startswith('module.') else k: v
          for k, v in ckpt.items()}
    if not sd or not all(isinstance(v, Tensor) for v in sd.values()):
        raise CheckpointError('The checkpoint holds no flat state dict of tensors (looked '
                              'at the top level and the "state_dict" / "model" wrappers)')
    return sd


def extract_replknet_state_dict(ckpt: dict) -> Tuple[StateDict, ConversionReport]:
    """Return the RepLKNet tensors of ``ckpt`` in the official flat key format."""
    sd = _unwrap(ckpt)
    if any(k.startswith('backbone.') for k in sd):
        out = {k[len('backbone.'):]: v for k, v in sd.items()
               if k.startswith('backbone.')}
        others = sorted(k for k in sd if not k.startswith('backbone.'))
        if 'head.fc.weight' in sd:  # mmpretrain ImageNet classifier
            fmt = 'mmpretrain'
            others = [k for k in others if not k.startswith('head.fc.')]
            out['head.weight'] = sd['head.fc.weight']
            out['head.bias'] = sd['head.fc.bias']
            last = max(int(k.split('.')[1]) for k in out if k.startswith('stages.'))
            norm = f'stages.{last}.norm.'
            for k in [k for k in out if k.startswith(norm)]:
                out['norm.' + k[len(norm):]] = out.pop(k)
        else:
            fmt = 'downstream'
    else:
        fmt, out, others = 'official', sd, []
    if STEM_WEIGHT not in out:
        raise CheckpointError(f'No RepLKNet weights found in the {fmt} checkpoint (no '
                              f'"{STEM_WEIGHT}"); first keys: {_short(sorted(sd))}')
    report = ConversionReport(fmt, is_merged(out), len(out), dropped=others)
    return out, report


def _is_deploy(model: nn.Module) -> bool:
    return bool(getattr(model, 'deploy', False))


def load_replknet_state_dict(model: nn.Module, state_dict: StateDict,
                             report: Optional[ConversionReport] = None
                             ) -> ConversionReport:
    """Load a canonical RepLKNet state dict strictly into a RepLKNet(-Classifier).

    Classifier keys are dropped for a backbone; XL's intermediate output norms, which no
    ImageNet checkpoint has, stay freshly initialized on a training-form model; a
    training-form checkpoint given to a deploy model is re-parameterized first. Anything
    else missing, unexpected or of the wrong shape raises a :class:`CheckpointError`
    (a ValueError) that names it.
    """
    report = report or ConversionReport('given', False)
    sd = dict(state_dict)
    if is_merged(sd) and not _is_deploy(model):
        raise CheckpointError('The checkpoint is in the merged (re-parameterized) form '
                              '("lkb_reparam" keys): build the model with deploy=True '
                              'to load it')
    if _is_deploy(model) and any(k.endswith('running_mean') for k in sd):
        sd = reparameterize_state_dict(sd, model.norm_cfg.get('eps', 1e-5))
        report.folded = True
    own = model.state_dict()
    if not any(k.startswith(CLASSIFIER_PREFIXES) for k in own):
        for k in [k for k in sd if k.startswith(CLASSIFIER_PREFIXES)]:
            report.dropped.append(k)
            del sd[k]
    if not _is_deploy(model):
        report.fresh = sorted(k for k in set(own) - set(sd) if STAGE_NORM.match(k))
    missing, unexpected, wrong = _differences(own, sd, optional=report.fresh)
    if missing or unexpected or wrong:
        hint = ''
        if wrong or (missing and unexpected):
            width = tuple(sd[STEM_WEIGHT].shape)[0] if STEM_WEIGHT in sd else '?'
            hint = (f' The checkpoint looks like another arch (stem width {width} vs '
                    f'the model\'s {model.channels[0]}, or a different small kernel / '
                    'number of blocks).')
        raise CheckpointError('RepLKNet checkpoint does not match the model: '
                              + _mismatch_text(missing, unexpected, wrong) + '.' + hint)
    model.load_state_dict(sd, strict=False)
    report.num_tensors = len(sd)
    return report


def load_pretrained(model: nn.Module, filename: str, prefix: Optional[str] = None,
                    map_location: str = 'cpu') -> ConversionReport:
    """Load a checkpoint file of any supported format into ``model``, strictly.

    ``prefix`` (e.g. ``'backbone.'``) is honoured when the file uses it; official flat
    and mmpretrain files are recognised without it.
    """
    ckpt = load_checkpoint_file(filename, map_location)
    if prefix and prefix != 'backbone.':
        sd = _unwrap(ckpt)
        ckpt = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if not ckpt:
            raise CheckpointError(f'No key of {filename} starts with prefix '
                                  f'{prefix!r}')
    state_dict, report = extract_replknet_state_dict(ckpt)
    report = load_replknet_state_dict(model, state_dict, report)
    print_log(f'Loaded {filename}: {report.summary()}', logger='current')
    return report


def _looks_like(state_dict: StateDict, prefix: str) -> Optional[str]:
    """``'RepLKNet-31B'`` (or ``'a RepLKNet with channels [...]'``) if the keys under
    ``prefix`` are a RepLKNet, else None."""
    sub = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    try:
        arch = infer_arch(sub)
    except (CheckpointError, KeyError):
        return None
    name = arch_name(arch)
    return f'RepLKNet-{name}' if name else f'a RepLKNet with channels {arch["channels"]}'


def _differences(own: StateDict, state_dict: StateDict, optional: Sequence[str] = ()
                 ) -> Tuple[List[str], List[str], List[str]]:
    """The keys of ``own`` that ``state_dict`` lacks (less ``optional`` ones and BatchNorm's
    ``num_batches_tracked``, as mmengine loads), the keys it has in excess, and those of
    another shape (``'key (file shape) vs (model shape)'``)."""
    missing = sorted(k for k in set(own) - set(state_dict)
                     if k not in optional and not k.endswith('num_batches_tracked'))
    unexpected = sorted(set(state_dict) - set(own))
    wrong = [f'{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}'
             for k in sorted(set(state_dict) & set(own))
             if getattr(state_dict[k], 'shape', None) != own[k].shape]
    return missing, unexpected, wrong


def _mismatch_text(missing: List[str], unexpected: List[str], wrong: List[str]) -> str:
    return '; '.join(f'{len(v)} {what} ({_short(v, 3)})' for what, v in (
        ('missing keys', missing), ('unexpected keys', unexpected),
        ('shape mismatches, file vs model', wrong)) if v)


def describe_mismatch(model_state: StateDict, state_dict: StateDict) -> Optional[str]:
    """What keeps ``state_dict`` from loading strictly into a model whose state dict is
    ``model_state`` (missing, unexpected and mis-shaped keys, first few of each, and the
    RepLKNet arch each side looks like); None if it loads."""
    differences = _differences(model_state, state_dict)
    if not any(differences):
        return None
    text = _mismatch_text(*differences)
    for prefix in ('backbone.', ''):
        theirs, ours = _looks_like(state_dict, prefix), _looks_like(model_state, prefix)
        if theirs and ours and theirs != ours:
            return f'{text}. The file looks like {theirs}; the model is {ours}'
    return text


def load_matching(model: nn.Module, state_dict: StateDict, what: str,
                  hint: str = '') -> None:
    """Load ``state_dict`` into ``model`` if it matches (:func:`describe_mismatch`), else
    raise one :class:`CheckpointError`: ``'{what}: {mismatch}{hint}'``."""
    problem = describe_mismatch(model.state_dict(), state_dict)
    if problem:
        raise CheckpointError(f'{what}: {problem}{hint}')
    model.load_state_dict(state_dict, strict=False)  # checked: only num_batches_tracked
