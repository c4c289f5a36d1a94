"""RepLKNet (Ding et al., CVPR 2022), built exactly as the official code.

Module and parameter names match the official checkpoints (docs/design.md, "Checkpoint
formats"), so official and mmpretrain ImageNet weights load strictly (see
:mod:`mmreplk.models.weights`). The arch table and the argument checks are in
:mod:`mmreplk.models.arch`.
"""
import contextlib
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmengine.model.weight_init import PretrainedInit
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm
from torch.utils.checkpoint import checkpoint

from mmreplk.errors import ConfigError
from mmreplk.registry import MODELS
from ..arch import ARCH_ZOO, FROM_ARCH, resolve_arch
from ..layers import ConvBN, ConvFFN, RepLKBlock
from ..reparam import reparameterize_state_dict
from ..weights import load_pretrained


def _frozen_bn_stats(module: nn.Module):
    """Context in which the BNs of ``module`` normalize by batch statistics without
    changing their running statistics (used while gradient checkpointing recomputes).

    Momentum 0 keeps the running averages exactly; the step counter is restored on exit.
    The BN call itself is unchanged, so the recomputation saves the same tensors.
    """
    @contextlib.contextmanager
    def ctx():
        bns = [m for m in module.modules()
               if isinstance(m, _BatchNorm) and m.track_running_stats]
        saved = [(m.momentum, m.num_batches_tracked.clone()) for m in bns]
        for m in bns:
            m.momentum = 0.0
        try:
            yield
        finally:
            for m, (momentum, steps) in zip(bns, saved):
                m.momentum = momentum
                m.num_batches_tracked.copy_(steps)
    return ctx()


def _run(module: nn.Module, x: torch.Tensor, with_cp: bool) -> torch.Tensor:
    """Run ``module``, through non-reentrant gradient checkpointing if asked.

    The recomputation in backward leaves BN running statistics alone, so they are updated
    once per step (the official code updates them twice).
    """
    if not (with_cp and torch.is_grad_enabled()):
        return module(x)
    return checkpoint(module, x, use_reentrant=False,
                      context_fn=lambda: (contextlib.nullcontext(),
                                          _frozen_bn_stats(module)))


class RepLKStage(nn.Module):
    """``num_blocks`` pairs of (RepLK block, ConvFFN block), plus the output norm."""

    def __init__(self, channels: int, num_blocks: int, kernel_size: int,
                 small_kernel: Optional[int], dw_ratio: float, ffn_ratio: float,
                 drop_path: Sequence[float], norm_cfg: dict, norm_out: bool,
                 with_cp: bool = False, deploy: bool = False,
                 dwconv_impl: Optional[str] = None) -> None:
        super().__init__()
        self.with_cp = with_cp
        blocks = []
        for i in range(num_blocks):
            blocks.append(RepLKBlock(channels, int(channels * dw_ratio), kernel_size,
                                     small_kernel, drop_path[i], norm_cfg, deploy,
                                     dwconv_impl))
            blocks.append(ConvFFN(channels, int(channels * ffn_ratio), drop_path[i],
                                  norm_cfg, deploy))
        self.blocks = nn.ModuleList(blocks)
        if not norm_out:
            self.norm = nn.Identity()
        elif deploy:  # the folded BN: a per-channel affine
            self.norm = nn.Conv2d(channels, channels, 1, groups=channels, bias=True)
        else:
            self.norm = build_norm_layer(norm_cfg, channels)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = _run(block, x, self.with_cp)
        return x


@MODELS.register_module()
class RepLKNet(BaseModule):
    """RepLKNet backbone with multi-scale outputs (strides 4, 8, 16, 32).

    Args:
        arch: '31B', '31L', 'XL', an ablation arch ('3', '7', '13', '25': 31B widths with
            all kernels 3, 7, 13 or [25, 25, 25, 13]), or a dict with ``layers``,
            ``channels``, ``large_kernel_sizes`` and optionally ``small_kernel``,
            ``dw_ratio``, ``norm_intermediate_features``.
        in_channels: Input image channels.
        out_indices: Stages whose outputs are returned (taken after the stage's blocks,
            before the transition).
        drop_path_rate: Final stochastic-depth rate (linear over the block pairs).
        small_kernel: Re-parameterization kernel (None: no small branch); default: the
            arch's value (5, none for XL and RepLKNet-3).
        dw_ratio: Width ratio of the large-kernel conv; default: the arch's value.
        ffn_ratio: ConvFFN expansion.
        norm_cfg: Config of every norm layer (mmcv ``build_norm_layer``).
        with_cp: Gradient checkpointing of every block (BN statistics updated once).
        norm_intermediate_features: A norm on each output; default: the arch's value
            (True only for XL).
        frozen_stages: -1 freezes nothing; 0 the stem; k >= 1 the stem, stages 0..k-1
            and the transitions between them.
        norm_eval: Keep every BN in eval mode while training.
        deploy: Build the re-parameterized (BN-free) form directly.
        dwconv_impl: Implementation of the depthwise convs (see :mod:`mmreplk.ops`).
        channels_last: Run in channels_last memory format; default (None): on CPU, where
            oneDNN's 1x1 and depthwise convs are several times faster in it than in NCHW.
        init_cfg: mmengine init config, a dict or a list; a ``dict(type='Pretrained',
            checkpoint=..., prefix=...)`` entry accepts official, mmpretrain, downstream
            and converted files (see :meth:`init_weights`).
    """

    arch_zoo: Dict[str, dict] = ARCH_ZOO  # mmpretrain's name for the arch table

    def __init__(self,
                 arch: Union[str, dict] = '31B',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 drop_path_rate: float = 0.,
                 small_kernel: Optional[int] = FROM_ARCH,
                 dw_ratio: Optional[float] = None,
                 ffn_ratio: float = 4,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 with_cp: bool = False,
                 norm_intermediate_features: Optional[bool] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 deploy: bool = False,
                 dwconv_impl: Optional[str] = None,
                 channels_last: Optional[bool] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        settings = resolve_arch(arch, small_kernel, dw_ratio, norm_intermediate_features)
        if ffn_ratio <= 0:
            raise ConfigError(f'ffn_ratio must be > 0, got {ffn_ratio}')
        if not 0 <= drop_path_rate < 1:
            raise ConfigError(f'drop_path_rate must be in [0, 1), got {drop_path_rate}')
        self.settings = settings
        self.layers = list(settings['layers'])
        self.channels = list(settings['channels'])
        self.num_stages = len(self.layers)
        if not isinstance(in_channels, int) or in_channels <= 0:
            raise ConfigError(f'in_channels must be a positive int, got {in_channels!r}')
        self.in_channels = in_channels
        self.out_indices = self._check_out_indices(out_indices)
        if not (isinstance(frozen_stages, int) and
                -1 <= frozen_stages <= self.num_stages):
            raise ConfigError(f'frozen_stages must be an int in [-1, {self.num_stages}]'
                              f', got {frozen_stages!r}')
        self.frozen_stages = frozen_stages
        self.drop_path_rate = drop_path_rate
        self.ffn_ratio = ffn_ratio
        self.norm_cfg = norm_cfg
        self.with_cp = with_cp
        self.norm_eval = norm_eval
        self.deploy = deploy
        self.dwconv_impl = dwconv_impl
        self.channels_last = channels_last
        self._build_layers()
        self._freeze_stages()

    # ------------------------------------------------------------------ set-up
    def _check_out_indices(self, out_indices: Sequence[int]) -> Tuple[int, ...]:
        if isinstance(out_indices, int):
            out_indices = (out_indices,)
        result = []
        for i in out_indices:
            if not isinstance(i, int) or not -self.num_stages <= i < self.num_stages:
                raise ConfigError(f'out_indices must be ints in [0, {self.num_stages}), '
                                  f'got {tuple(out_indices)}')
            result.append(i % self.num_stages)
        if not result:
            raise ConfigError('out_indices must name at least one stage')
        return tuple(sorted(set(result)))

    def _build_layers(self) -> None:
        settings, c = self.settings, self.channels
        norm = dict(norm_cfg=self.norm_cfg, deploy=self.deploy)
        self.stem = nn.ModuleList([
            ConvBN(self.in_channels, c[0], 3, stride=2, act=True, **norm),
            ConvBN(c[0], c[0], 3, groups=c[0], act=True, **norm),
            ConvBN(c[0], c[0], 1, act=True, **norm),
            ConvBN(c[0], c[0], 3, stride=2, groups=c[0], act=True, **norm),
        ])
        dpr = torch.linspace(0, self.drop_path_rate, sum(self.layers),
                             device='cpu').tolist()  # also when built on 'meta'
        self.stages = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for i, n in enumerate(self.layers):
            first = sum(self.layers[:i])
            self.stages.append(RepLKStage(
                c[i], n, settings['large_kernel_sizes'][i], settings['small_kernel'],
                settings['dw_ratio'], self.ffn_ratio, dpr[first:first + n], self.norm_cfg,
                settings['norm_intermediate_features'], self.with_cp, self.deploy,
                self.dwconv_impl))
            if i < self.num_stages - 1:
                self.transitions.append(nn.Sequential(
                    ConvBN(c[i], c[i + 1], 1, act=True, **norm),
                    ConvBN(c[i + 1], c[i + 1], 3, stride=2, groups=c[i + 1], act=True,
                           **norm)))

    # ---------------------------------------------------------------- forward
    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or \
                x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f'RepLKNet expects images of shape (N, {self.in_channels}, '
                             f'H, W), got {shape}')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Feature maps of the ``out_indices`` stages (channels_last tensors when the
        network runs in that format; the values do not depend on it)."""
        self._check_input(x)
        cl = self.channels_last
        if cl or (cl is None and x.device.type == 'cpu'):
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.stem[0](x)
        for layer in self.stem[1:]:
            x = _run(layer, x, self.with_cp)
        outs = []
        last = self.out_indices[-1]
        for i in range(last + 1):
            x = self.stages[i](x)
            if i in self.out_indices:
                outs.append(self.stages[i].norm(x))
            if i < last:
                x = self.transitions[i](x)
        return tuple(outs)

    # ------------------------------------------------------------ train state
    def _freeze_stages(self) -> None:
        frozen = [self.stem] if self.frozen_stages >= 0 else []
        for i in range(self.frozen_stages):
            frozen.append(self.stages[i])
            if i < self.frozen_stages - 1:
                frozen.append(self.transitions[i])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'RepLKNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def init_weights(self) -> None:
        """Run ``init_cfg`` (a dict or a list of them), as mmengine does, except that each
        ``Pretrained`` entry loads through :func:`~mmreplk.models.weights.load_pretrained`:
        official, mmpretrain, downstream and converted files are converted and loaded
        strictly (a mismatch raises a :class:`~mmreplk.errors.CheckpointError` naming
        the keys). As in mmengine, the ``Pretrained`` entries run after the others.
        """
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else \
            [self.init_cfg] if self.init_cfg else []
        pretrained = [c for c in cfgs if c.get('type') in ('Pretrained', PretrainedInit)]
        if self._is_init or not pretrained:
            super().init_weights()
            return
        init_cfg = self.init_cfg
        self.init_cfg = [c for c in cfgs if c not in pretrained] or None
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        for cfg in pretrained:
            load_pretrained(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                            map_location=cfg.get('map_location', 'cpu'))

    # ------------------------------------------------------------- deployment
    def switch_to_deploy(self) -> None:
        """Re-parameterize: merge the small kernels into the large ones, fold every BN
        into its conv and each pre-BN into the next 1x1 conv (no BN is left).

        The result equals the training form in eval mode, and its state dict loads
        strictly into a model built with ``deploy=True``.

        The stem, stages and transitions are **rebuilt** (new modules and parameters,
        on the old device and dtype). Whatever was made from the old ones before the call
        is stale: parameter references, optimizer param groups, forward / backward hooks
        on submodules, and wrappers (DDP, EMA, ``torch.compile``). Call it on a model
        that will only run inference, before wrapping it or building an optimizer.
        Models whose norms are not BatchNorm raise a
        :class:`~mmreplk.errors.ConfigError`.
        """
        if self.deploy:
            return
        bad = [type(m).__name__ for m in self.modules()
               if 'Norm' in type(m).__name__ and not isinstance(m, _BatchNorm)]
        if bad:
            raise ConfigError(f'switch_to_deploy folds BatchNorm layers only; this '
                              f'model has {sorted(set(bad))} (norm_cfg={self.norm_cfg})')
        state = reparameterize_state_dict(self.state_dict(),
                                          eps=self.norm_cfg.get('eps', 1e-5))
        ref = next(self.parameters())
        self.deploy = True
        self._build_layers()
        self.to(device=ref.device, dtype=ref.dtype)
        self.load_state_dict(state, strict=True)
        self.train(self.training)

    # ------------------------------------------------------ lr decay groups
    def get_layer_depth(self, param_name: str, prefix: str = 'backbone.',
                        decay_type: str = 'layer_wise') -> Tuple[int, int]:
        """``(layer_id, num_layers)`` of a parameter, for layer-wise lr decay.

        ``layer_wise`` is the official grouping (``get_num_layer_for_replknet`` in
        the authors' ``optim_factory.py``): stem 0; then each stage in groups of 4
        blocks (2 RepLK blocks + 2 ConvFFNs), numbered on; a transition, like a
        stage's output norm, joins the last group of the stage *before* it; names
        outside ``prefix`` (necks, heads) ``num_layers - 1``. For 31B/31L/XL:
        stages 0, 1 -> 1, 2; stage 2 -> 3..11; stage 3 -> 12; transitions
        0, 1, 2 -> 1, 2, 11; the rest 13. ``stage_wise``: stem 0, stage i (with the
        transition after it) i + 1, the rest ``num_stages + 1``. Same contract as
        mmpretrain backbones: the lr scale is ``rate ** (num_layers - 1 - layer_id)``.
        """
        if decay_type not in ('layer_wise', 'stage_wise'):
            raise ValueError(f"decay_type must be 'layer_wise' or 'stage_wise', "
                             f'got {decay_type!r}')
        blocks = [2 * n for n in self.layers]  # a RepLK block and a ConvFFN per layer
        per_group = [4 if decay_type == 'layer_wise' else b for b in blocks]
        groups = [math.ceil(b / g) for b, g in zip(blocks, per_group)]
        num_layers = sum(groups) + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        parts = param_name[len(prefix):].split('.')
        if parts[0] == 'stem':
            return 0, num_layers
        if parts[0] not in ('stages', 'transitions'):
            return num_layers - 1, num_layers
        i = int(parts[1])
        first = 1 + sum(groups[:i])
        if parts[0] == 'stages' and parts[2] == 'blocks':
            return first + int(parts[3]) // per_group[i], num_layers
        return first + groups[i] - 1, num_layers


@MODELS.register_module()
class RepLKNetClassifier(RepLKNet):
    """The ImageNet model: RepLKNet + BN + global average pooling + Linear.

    Its state dict is exactly the official flat ImageNet checkpoint (``norm.*``,
    ``head.*`` at the top level). ``forward`` returns logits.
    """

    def __init__(self, arch: Union[str, dict] = '31B', num_classes: int = 1000,
                 **kwargs) -> None:
        if num_classes <= 0:
            raise ConfigError(f'num_classes must be positive, got {num_classes}')
        self.num_classes = num_classes
        kwargs.setdefault('norm_intermediate_features', False)
        super().__init__(arch, out_indices=(-1,), **kwargs)

    def _build_layers(self) -> None:
        super()._build_layers()
        c = self.channels[-1]
        self.norm = nn.Identity() if self.deploy else \
            build_norm_layer(self.norm_cfg, c)[1]
        self.head = nn.Linear(c, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = super().forward(x)[-1]
        return self.head(self.norm(feat).mean((2, 3)))
