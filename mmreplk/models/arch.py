"""RepLKNet's architecture facts, in one place: the arch table, argument checks, the
official state-dict key names and reading an arch back off a state dict.

Used by the backbone, re-parameterization, weight loading and the tools; see
docs/design.md (sections "Architecture" and "Checkpoint formats") for the facts
themselves. Only the standard library and torch tensors' shapes are used here.
"""
import enum
import re
from typing import Dict, List, Mapping, Optional, Union

from mmreplk.errors import CheckpointError, ConfigError

__all__ = [
    'ARCH_KEYS', 'ARCH_ZOO', 'FROM_ARCH', 'STAGE_NORM', 'CLASSIFIER_PREFIXES',
    'STEM_WEIGHT', 'resolve_arch', 'infer_arch', 'arch_name', 'is_merged',
    'block_key'
]

ARCH_KEYS = ('layers', 'channels', 'large_kernel_sizes', 'small_kernel', 'dw_ratio')
OPTIONAL_DEFAULTS = dict(small_kernel=5, dw_ratio=1.0, norm_intermediate_features=False)
class _FromArch(enum.Enum):
    """The default of the backbone arguments that take the arch's own value (``None``
    is a value of its own: no small kernel)."""
    FROM_ARCH = 'from the arch'

    def __repr__(self) -> str:
        return 'FROM_ARCH'


FROM_ARCH = _FromArch.FROM_ARCH


def _arch(channels: List[int], kernels: List[int], small_kernel: Optional[int] = 5,
          dw_ratio: float = 1.0, norm_out: bool = False) -> dict:
    return dict(layers=[2, 2, 18, 2], channels=channels, large_kernel_sizes=kernels,
                small_kernel=small_kernel, dw_ratio=dw_ratio,
                norm_intermediate_features=norm_out)


_W31B = [128, 256, 512, 1024]

#: The paper's archs: 31B, 31L, XL, and the ablations 3, 7, 13, 25 (31B widths).
ARCH_ZOO: Dict[str, dict] = {
    '31B': _arch(_W31B, [31, 29, 27, 13]),
    '31L': _arch([192, 384, 768, 1536], [31, 29, 27, 13]),
    'XL': _arch([256, 512, 1024, 2048], [27, 27, 27, 13], small_kernel=None,
                dw_ratio=1.5, norm_out=True),
    '3': _arch(_W31B, [3, 3, 3, 3], small_kernel=None),
    '7': _arch(_W31B, [7, 7, 7, 7]),
    '13': _arch(_W31B, [13, 13, 13, 13]),
    '25': _arch(_W31B, [25, 25, 25, 13]),
}

# ---------------------------------------------------------------- official key names
STEM_WEIGHT = 'stem.0.conv.weight'  # present in every RepLKNet state dict
CLASSIFIER_PREFIXES = ('norm.', 'head.')  # the ImageNet classifier's own keys
STAGE_NORM = re.compile(r'^stages\.\d+\.norm\.')  # XL's output norms
_LK_ORIGIN = 'large_kernel.lkb_origin.conv.weight'
_LK_MERGED = 'large_kernel.lkb_reparam.weight'
_LK_SMALL = 'large_kernel.small_conv.conv.weight'
_PW1 = 'pw1.conv.weight'


def block_key(stage: int, block: int, name: str = '') -> str:
    """Key (prefix) of block ``block`` of stage ``stage``: RepLK blocks are the even
    blocks, ConvFFNs the odd ones."""
    return f'stages.{stage}.blocks.{block}.{name}'


def is_merged(state_dict: Mapping) -> bool:
    """Whether the large kernels are in the merged (re-parameterized) form."""
    return any('.lkb_reparam.' in k for k in state_dict)


# ---------------------------------------------------------------- checks
def resolve_arch(arch: Union[str, dict],
                 small_kernel: Union[int, None, _FromArch] = FROM_ARCH,
                 dw_ratio: Optional[float] = None,
                 norm_intermediate_features: Optional[bool] = None) -> dict:
    """The checked settings of ``arch`` (a zoo name or a dict) with the overrides applied.

    The ablation names may come as ints (``--cfg-options model.backbone.arch=13`` gives
    the int 13).

    Raises:
        ConfigError: an unknown name, a malformed dict or a setting the network cannot
            be built with (even kernels, a small kernel not smaller than every large one).
    """
    if isinstance(arch, int) and not isinstance(arch, bool):
        arch = str(arch)
    if isinstance(arch, str):
        if arch not in ARCH_ZOO:
            raise ConfigError(f'Unknown RepLKNet arch {arch!r}; valid archs: '
                              f'{sorted(ARCH_ZOO)} or a dict with keys '
                              f'{ARCH_KEYS[:3]} (optional {ARCH_KEYS[3:]})')
        settings = dict(ARCH_ZOO[arch])
    elif isinstance(arch, Mapping):
        missing = [k for k in ARCH_KEYS[:3] if k not in arch]
        unknown = set(arch) - set(ARCH_KEYS) - {'norm_intermediate_features'}
        if missing or unknown:
            raise ConfigError(f'Custom arch dict: missing keys {missing}, unknown keys '
                              f'{sorted(unknown)}; expected {ARCH_KEYS}')
        settings = dict(OPTIONAL_DEFAULTS, **arch)
    else:
        raise ConfigError(f'arch must be a str or a dict, got {type(arch).__name__}')
    if small_kernel is not FROM_ARCH:
        settings['small_kernel'] = small_kernel
    if dw_ratio is not None:
        settings['dw_ratio'] = dw_ratio
    if norm_intermediate_features is not None:
        settings['norm_intermediate_features'] = norm_intermediate_features
    _check(settings)
    return settings


def _check(s: dict) -> None:
    n = len(s['layers'])
    if n == 0 or any(len(s[k]) != n for k in ARCH_KEYS[:3]):
        raise ConfigError('layers, channels and large_kernel_sizes must be non-empty '
                          f'and of equal length, got {s["layers"]}, {s["channels"]}, '
                          f'{s["large_kernel_sizes"]}')
    for name in ('layers', 'channels'):
        if any(not isinstance(v, int) or v <= 0 for v in s[name]):
            raise ConfigError(f'{name} must be positive ints, got {s[name]}')
    for k in s['large_kernel_sizes']:
        if not isinstance(k, int) or k <= 0 or k % 2 == 0:
            raise ConfigError('large_kernel_sizes must be positive odd ints (the '
                              f'kernel is centred), got {s["large_kernel_sizes"]}')
    sk = s['small_kernel']
    if sk is not None:
        if not isinstance(sk, int) or sk <= 0 or sk % 2 == 0:
            raise ConfigError(f'small_kernel must be a positive odd int or None, '
                              f'got {sk!r}')
        if sk >= min(s['large_kernel_sizes']):
            raise ConfigError(f'small_kernel ({sk}) must be smaller than every large '
                              f'kernel {s["large_kernel_sizes"]}; use small_kernel='
                              'None to drop the re-parameterization branch')
    if s['dw_ratio'] <= 0:
        raise ConfigError(f'dw_ratio must be > 0, got {s["dw_ratio"]}')


# ---------------------------------------------------------------- reading state dicts
def infer_arch(state_dict: Mapping) -> dict:
    """Read the arch dict (layers, channels, kernels, small kernel, ratios, output norms)
    off a state dict in the official key format, training or merged form."""
    layers, channels, kernels = [], [], []
    small, dw_ratio, i = None, 1.0, 0
    while True:
        keys = [k for k in state_dict if k.startswith(f'stages.{i}.blocks.')]
        if not keys:
            break
        blocks = {int(k.split('.')[3]) for k in keys}
        layers.append((max(blocks) + 1) // 2)
        lk = state_dict.get(block_key(i, 0, _LK_ORIGIN),
                            state_dict.get(block_key(i, 0, _LK_MERGED)))
        if lk is None:
            raise CheckpointError(f'stage {i} has no large-kernel conv weight')
        kernels.append(int(lk.shape[-1]))
        pw1 = state_dict[block_key(i, 0, _PW1)]
        channels.append(int(pw1.shape[1]))
        dw_ratio = pw1.shape[0] / pw1.shape[1]
        sc = state_dict.get(block_key(i, 0, _LK_SMALL))
        if sc is not None:
            small = int(sc.shape[-1])
        i += 1
    if not layers:
        raise CheckpointError('No RepLKNet stages found in the state dict')
    return dict(layers=layers, channels=channels, large_kernel_sizes=kernels,
                small_kernel=small, dw_ratio=dw_ratio,
                norm_intermediate_features=any(STAGE_NORM.match(k)
                                               for k in state_dict))


def arch_name(arch: Mapping) -> Optional[str]:
    """The name of the zoo arch equal to ``arch`` (up to its output norms), if any."""
    for name, zoo in ARCH_ZOO.items():
        if all(list(zoo[k]) == list(arch[k]) if isinstance(zoo[k], list)
               else zoo[k] == arch[k] for k in ARCH_KEYS):
            return name
    return None
