"""Parameters / FLOPs: mmreplk.analysis.complexity and
tools/analysis_tools/get_flops.py, checked against hand counts (one fused
multiply-add = one FLOP)."""
import json
from functools import partial

import pytest
import torch
import torch.nn as nn
from conftest import TINY_ARCH, import_tool

from mmreplk.analysis.complexity import (TensorForward, build_from_config,
                                         complexity_report, conv2d_macs,
                                         count_flops, count_params,
                                         detector_forward, switch_to_deploy)
from mmreplk.ops import DepthwiseConv2d

# a second arch: other widths, a 1.5 dw_ratio, a 9x9 kernel
ARCH2 = dict(layers=[1, 2, 1, 1], channels=[8, 12, 16, 24],
             large_kernel_sizes=[9, 7, 5, 5], small_kernel=3, dw_ratio=1.5)
WIDTHS = TINY_ARCH['channels']


@pytest.fixture(scope='module')
def get_flops():
    return import_tool('analysis_tools/get_flops.py')


def hand_count(arch, h, w, deploy=False, num_classes=None):
    """MACs of a RepLKNet (docs/design.md, "Architecture") by hand:
    {'conv', 'batch_norm', 'linear'}.

    An eval-mode BatchNorm counts 2 per element (scale and shift), as mmengine does. The
    deploy form keeps the convs minus the merged small kernels, and no BatchNorm.
    """
    C, K = arch['channels'], arch['large_kernel_sizes']
    k, ratio = arch['small_kernel'], arch['dw_ratio']
    conv = bn = small = 0

    def conv_bn(cin, cout, ks, oh, ow, groups=1):
        nonlocal conv, bn
        conv += conv2d_macs(cin, cout, ks, (oh, ow), groups)
        bn += 2 * cout * oh * ow

    c0 = C[0]
    h, w = (h + 1) // 2, (w + 1) // 2
    conv_bn(3, c0, 3, h, w)
    conv_bn(c0, c0, 3, h, w, c0)
    conv_bn(c0, c0, 1, h, w)
    h, w = (h + 1) // 2, (w + 1) // 2
    conv_bn(c0, c0, 3, h, w, c0)
    for i, (layers, c) in enumerate(zip(arch['layers'], C)):
        cd = int(c * ratio)
        for _ in range(layers):
            bn += 2 * c * h * w                      # prelkb_bn
            conv_bn(c, cd, 1, h, w)                  # pw1
            conv_bn(cd, cd, K[i], h, w, cd)          # large kernel
            if k:
                conv_bn(cd, cd, k, h, w, cd)         # small branch
                small += conv2d_macs(cd, cd, k, (h, w), cd)
            conv_bn(cd, c, 1, h, w)                  # pw2
            bn += 2 * c * h * w                      # preffn_bn
            conv_bn(c, 4 * c, 1, h, w)
            conv_bn(4 * c, c, 1, h, w)
        if i < len(C) - 1:                           # transition
            conv_bn(c, C[i + 1], 1, h, w)
            h, w = (h + 1) // 2, (w + 1) // 2
            conv_bn(C[i + 1], C[i + 1], 3, h, w, C[i + 1])
    out = dict(conv=conv, batch_norm=bn)
    if num_classes:
        out['batch_norm'] += 2 * C[-1] * h * w        # final norm
        out['linear'] = C[-1] * num_classes
    if deploy:
        out['conv'] -= small
        del out['batch_norm']
    return out


# ----------------------------------------------------------------- single layers
def test_single_conv_hand_count():
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1)
    f = count_flops(conv, torch.randn(1, 4, 15, 13))
    assert f.total() == 8 * 7 * 6 * 4 * 9 == conv2d_macs(4, 6, 3, (8, 7))
    grouped = nn.Conv2d(8, 6, (3, 5), padding=(1, 2), groups=2)
    f = count_flops(grouped, torch.randn(2, 8, 10, 11))
    assert f.by_operator() == {'conv': 2 * 10 * 11 * 6 * 4 * 3 * 5}
    fc = nn.Linear(10, 7)
    assert count_flops(fc, torch.randn(3, 10)).total() == 3 * 10 * 7
    assert count_params(nn.Sequential(conv, grouped)) == sum(
        p.numel() for p in (*conv.parameters(), *grouped.parameters()))


@pytest.mark.parametrize('impl', [None, 'auto', 'cpu', 'torch'])
def test_depthwise_conv2d_counted_like_nn_conv2d(impl):
    """The fast path (a 13x13 kernel on CPU) is counted as a convolution by our counter
    and by mmengine's get_model_complexity_info, the tool users already run."""
    from mmengine.analysis import get_model_complexity_info
    dw = DepthwiseConv2d(8, 8, 13, padding=6, groups=8, bias=False, impl=impl)
    ref = nn.Conv2d(8, 8, 13, padding=6, groups=8, bias=False)
    x = torch.randn(2, 8, 12, 9)
    expected = conv2d_macs(8, 8, 13, (12, 9), groups=8, batch=2)
    assert count_flops(dw, x).total() == count_flops(ref, x).total() == expected
    info = get_model_complexity_info(dw, inputs=(x, ), show_table=False, show_arch=False)
    assert info['flops'] == expected
    assert dw.impl == impl


# ----------------------------------------------------------------- RepLKNet
@pytest.mark.parametrize('arch', [TINY_ARCH, ARCH2])
def test_replknet_classifier_matches_hand_count(arch):
    from mmreplk.models import RepLKNetClassifier
    model = RepLKNetClassifier(arch=arch, num_classes=10)
    x = torch.randn(1, 3, 64, 96)
    f = count_flops(model, x)
    assert f.by_operator() == hand_count(arch, 64, 96, num_classes=10)
    assert count_params(model) == sum(p.numel() for p in model.parameters())
    n_train = count_params(model)
    switch_to_deploy(model)
    f = count_flops(model, x)
    assert f.by_operator() == hand_count(arch, 64, 96, deploy=True, num_classes=10)
    assert count_params(model) == sum(p.numel() for p in model.parameters()) < n_train


def test_replknet_backbone_and_report():
    from mmreplk.models import RepLKNet
    model = RepLKNet(arch=ARCH2)
    rows = complexity_report(model, 'backbone', (3, 64, 64))
    assert [(r['form'], r['part']) for r in rows] == [('train', 'whole'),
                                                     ('deploy', 'whole')]
    train, deploy = rows
    hc = hand_count(ARCH2, 64, 64)
    assert train['flops'] == sum(hc.values()) and train['flops_by_op'] == hc
    assert deploy['flops'] == hand_count(ARCH2, 64, 64, deploy=True)['conv']
    assert deploy['num_bn'] == 0 < train['num_bn']
    assert deploy['params'] == sum(p.numel() for p in model.parameters())


def test_get_flops_tool_arch(tmp_path, capsys, get_flops):
    out = tmp_path / 'r.json'
    rows = get_flops.main(['--arch', json.dumps(TINY_ARCH), '--shape', '64',
                           '--num-classes', '10', '--json', str(out)])
    text = capsys.readouterr().out
    assert 'multiply-accumulates' in text and 'deploy' in text
    saved = json.load(open(out))
    assert saved['shape'] == [64, 64] and len(saved['rows']) == 2
    assert rows[0]['flops'] == sum(hand_count(TINY_ARCH, 64, 64, num_classes=10)
                                   .values())
    assert rows[1]['flops'] == sum(hand_count(TINY_ARCH, 64, 64, deploy=True,
                                              num_classes=10).values())
    only = get_flops.main(['--arch', json.dumps(TINY_ARCH), '--shape', '64',
                           '--deploy', '--backbone-only'])
    assert len(only) == 1 and only[0]['flops'] == \
        hand_count(TINY_ARCH, 64, 64, deploy=True)['conv']


# ----------------------------------------------------------------- segmentor / detector
SEG_CFG = f"""
default_scope = 'mmseg'
custom_imports = dict(imports=['mmreplk'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', size=(64, 64)),
    backbone=dict(type='mmreplk.RepLKNet', arch={TINY_ARCH!r}, with_cp=True,
                  init_cfg=dict(type='Pretrained', checkpoint='/nonexistent.pth')),
    decode_head=dict(type='UPerHead', in_channels={WIDTHS}, in_index=[0, 1, 2, 3],
                     pool_scales=(1, 2, 3, 6), channels=16, dropout_ratio=0.1,
                     num_classes=5, norm_cfg=norm_cfg, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    auxiliary_head=dict(type='FCNHead', in_channels={WIDTHS[2]}, in_index=2, channels=8,
                        num_convs=1, concat_input=False, dropout_ratio=0.1,
                        num_classes=5, norm_cfg=norm_cfg, align_corners=False,
                        loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
"""

DET_CFG = f"""
default_scope = 'mmdet'
custom_imports = dict(imports=['mmreplk'], allow_failed_imports=False)
model = dict(
    type='FCOS',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1],
                           pad_size_divisor=32),
    backbone=dict(type='mmreplk.RepLKNet', arch={TINY_ARCH!r}),
    neck=dict(type='FPN', in_channels={WIDTHS}, out_channels=32, start_level=1,
              add_extra_convs='on_output', num_outs=5, relu_before_extra_convs=True),
    bbox_head=dict(type='FCOSHead', num_classes=3, in_channels=32, stacked_convs=2,
                   feat_channels=32, strides=[8, 16, 32, 64, 128],
                   norm_cfg=dict(type='GN', num_groups=8, requires_grad=True)),
    test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=10))
"""

CASCADE_CFG = f"""
_base_ = ['mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py']
default_scope = 'mmdet'
custom_imports = dict(imports=['mmreplk'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='mmreplk.RepLKNet', arch={TINY_ARCH!r}),
    neck=dict(in_channels={WIDTHS}, out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=16),
        bbox_head=[dict(type='Shared2FCBBoxHead', in_channels=16, fc_out_channels=32,
                        roi_feat_size=7, num_classes=3, reg_class_agnostic=True)] * 3,
        mask_roi_extractor=dict(out_channels=16),
        mask_head=dict(in_channels=16, conv_out_channels=16, num_classes=3)))
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_get_flops_tool_segmentor(tmp_path, get_flops):
    cfg = _write(tmp_path, 'seg.py', SEG_CFG)
    rows = get_flops.main([cfg, '--shape', '64', '96'])
    by = {(r['form'], r['part']): r for r in rows}
    model, task = build_from_config(cfg)
    assert task == 'seg' and not model.backbone.with_cp
    total = sum(p.numel() for p in model.parameters())
    aux = sum(p.numel() for p in model.auxiliary_head.parameters())
    assert by['train', 'whole (+aux head)']['params'] == total
    assert by['train', 'whole']['params'] == total - aux
    assert by['train', 'backbone']['params'] == sum(
        p.numel() for p in model.backbone.parameters())
    assert by['train', 'backbone']['flops'] == sum(hand_count(TINY_ARCH, 64, 96).values())
    assert by['deploy', 'backbone']['flops'] == hand_count(TINY_ARCH, 64, 96, True)['conv']
    head = by['train', 'whole']['flops'] - by['train', 'backbone']['flops']
    assert head > 0
    # the head is untouched by switch_to_deploy
    assert by['deploy', 'whole']['flops'] - by['deploy', 'backbone']['flops'] == head
    assert by['deploy', 'backbone']['num_bn'] == 0


def test_get_flops_tool_fcos_with_cfg_options(tmp_path, get_flops):
    """--cfg-options reaches the model: the backbone counted is ARCH2's."""
    from mmengine.config import Config
    cfg = _write(tmp_path, 'fcos.py', DET_CFG)
    options = {f'model.backbone.arch.{k}': v for k, v in ARCH2.items()}
    options['model.neck.in_channels'] = ARCH2['channels']
    rows = get_flops.main([cfg, '--shape', '64', '--train', '--cfg-options'] +
                          [f'{k}={v}'.replace(' ', '') for k, v in options.items()])
    by = {r['part']: r for r in rows}
    assert by['backbone']['flops'] == sum(hand_count(ARCH2, 64, 64).values())
    assert by['whole']['flops'] > by['backbone']['flops']
    merged = Config.fromfile(cfg)
    merged.merge_from_dict(options)
    model, task = build_from_config(merged)
    assert task == 'det'
    assert by['whole']['params'] == sum(p.numel() for p in model.parameters())


def test_cascade_roi_heads_hand_count(tmp_path):
    """Each extra proposal adds the three Shared2FC bbox heads' MACs, each extra mask
    RoI the three mask heads' (4 convs 3x3, a 2x2 deconv, a 1x1 logits conv)."""
    model, task = build_from_config(_write(tmp_path, 'cascade.py', CASCADE_CFG))
    assert task == 'det'
    x = torch.randn(1, 3, 64, 64)

    def macs(n, m):
        fwd = partial(detector_forward, num_proposals=n, num_mask_rois=m)
        return count_flops(TensorForward(model, fwd), x).total()

    base = macs(4, 2)
    per_box = 16 * 49 * 32 + 32 * 32 + 32 * 4 + 32 * 4   # fc1, fc2, cls (3+1), reg (4)
    per_mask = 4 * conv2d_macs(16, 16, 3, 14) + 16 * 16 * 4 * 14 * 14 \
        + conv2d_macs(16, 3, 1, 28)
    assert macs(7, 2) - base == 3 * 3 * per_box
    assert macs(4, 4) - base == 3 * 2 * per_mask
