"""State dicts in the official RepLKNet checkpoint format, written from docs/design.md
("Checkpoint formats" for the keys, "Architecture" for the shapes), independently of
mmreplk's modules (an oracle for the tests, not a second home of the arch table)."""
from typing import Dict

import torch

# The published parameter counts (1000-class head, training form): independent facts
# that catch a wrong entry of the arch table the shapes below are computed from.
OFFICIAL_PARAMS = {'31B': 79_864_168, '31L': 172_671_016, 'XL': 335_435_752}


def _bn(sd: dict, prefix: str, c: int) -> None:
    sd[prefix + 'weight'] = (c,)
    sd[prefix + 'bias'] = (c,)
    sd[prefix + 'running_mean'] = (c,)
    sd[prefix + 'running_var'] = (c,)
    sd[prefix + 'num_batches_tracked'] = ()


def _conv_bn(sd: dict, prefix: str, shape: tuple) -> None:
    sd[prefix + 'conv.weight'] = shape
    _bn(sd, prefix + 'bn.', shape[0])


def official_shapes(arch: dict, num_classes: int = 1000,
                    stage_norms: bool = False) -> Dict[str, tuple]:
    """Key -> shape of an official (training-form) checkpoint of ``arch`` (a dict with
    layers, channels, large_kernel_sizes, small_kernel, dw_ratio)."""
    layers, channels, kernels = (arch['layers'], arch['channels'],
                                 arch['large_kernel_sizes'])
    small, dw_ratio = arch['small_kernel'], arch['dw_ratio']
    sd: Dict[str, tuple] = {}
    c0 = channels[0]
    for i, shape in enumerate([(c0, 3, 3, 3), (c0, 1, 3, 3), (c0, c0, 1, 1),
                               (c0, 1, 3, 3)]):
        _conv_bn(sd, f'stem.{i}.', shape)
    for s, (n, c, k) in enumerate(zip(layers, channels, kernels)):
        cd = int(c * dw_ratio)
        for j in range(n):
            b = f'stages.{s}.blocks.{2 * j}.'
            _bn(sd, b + 'prelkb_bn.', c)
            _conv_bn(sd, b + 'pw1.', (cd, c, 1, 1))
            _conv_bn(sd, b + 'large_kernel.lkb_origin.', (cd, 1, k, k))
            if small:
                _conv_bn(sd, b + 'large_kernel.small_conv.', (cd, 1, small, small))
            _conv_bn(sd, b + 'pw2.', (c, cd, 1, 1))
            f = f'stages.{s}.blocks.{2 * j + 1}.'
            _bn(sd, f + 'preffn_bn.', c)
            _conv_bn(sd, f + 'pw1.', (4 * c, c, 1, 1))
            _conv_bn(sd, f + 'pw2.', (c, 4 * c, 1, 1))
        if stage_norms:
            _bn(sd, f'stages.{s}.norm.', c)
        if s + 1 < len(layers):
            nxt = channels[s + 1]
            _conv_bn(sd, f'transitions.{s}.0.', (nxt, c, 1, 1))
            _conv_bn(sd, f'transitions.{s}.1.', (nxt, 1, 3, 3))
    if num_classes:
        _bn(sd, 'norm.', channels[-1])
        sd['head.weight'] = (num_classes, channels[-1])
        sd['head.bias'] = (num_classes,)
    return sd


def random_state_dict(shapes: Dict[str, tuple], seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random tensors of ``shapes``; BN statistics are valid (positive variances)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in shapes.items():
        if key.endswith('num_batches_tracked'):
            sd[key] = torch.tensor(7)
        elif key.endswith('running_var'):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[key] = torch.randn(shape, generator=g) * 0.05
    return sd


def num_params(shapes: Dict[str, tuple]) -> int:
    """Learnable parameters: everything but BN running statistics."""
    total = 0
    for key, shape in shapes.items():
        if not key.endswith(('running_mean', 'running_var', 'num_batches_tracked')):
            total += int(torch.Size(shape).numel())
    return total
