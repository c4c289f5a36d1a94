"""Loading official / mmpretrain / downstream / converted weights, and clear failures."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from official_format import ARCHS, TINY, official_shapes, random_state_dict

from mmreplk.models import (RepLKNet, RepLKNetClassifier,
                            extract_replknet_state_dict, load_pretrained,
                            reparameterize_state_dict)

ROOT = Path(__file__).resolve().parents[1]


def tiny_official(num_classes=10, small=3, **kw):
    arch = dict(TINY, small_kernel=small)
    shapes = official_shapes(arch['layers'], arch['channels'],
                             arch['large_kernel_sizes'], small, 1.0,
                             num_classes=num_classes, **kw)
    return arch, random_state_dict(shapes)


def to_mmpretrain(sd):
    out = {}
    for k, v in sd.items():
        if k.startswith('head.'):
            out['head.fc.' + k[5:]] = v
        elif k.startswith('norm.'):
            out['backbone.stages.3.norm.' + k[5:]] = v
        else:
            out['backbone.' + k] = v
    return {'state_dict': out, 'meta': {}}


def assert_loaded(model, sd):
    own = model.state_dict()
    for k, v in own.items():
        if k in sd:
            assert torch.equal(v, sd[k]), k


@pytest.mark.parametrize('wrap', ['flat', 'model', 'state_dict', 'module.'])
def test_official_formats_load_into_backbone_and_classifier(tmp_path, wrap):
    arch, sd = tiny_official()
    ckpt = {'flat': sd, 'model': {'model': sd}, 'state_dict': {'state_dict': sd},
            'module.': {'module.' + k: v for k, v in sd.items()}}[wrap]
    path = str(tmp_path / 'official.pth')
    torch.save(ckpt, path)
    backbone = RepLKNet(arch=arch)
    report = load_pretrained(backbone, path)
    assert report.source_format == 'official'
    assert sorted(report.dropped) == sorted(k for k in sd if k.startswith(('norm.',
                                                                           'head.')))
    assert_loaded(backbone, sd)
    clf = RepLKNetClassifier(arch=arch, num_classes=10)
    load_pretrained(clf, path)
    assert_loaded(clf, sd)


def test_mmpretrain_and_downstream_formats(tmp_path):
    arch, sd = tiny_official()
    torch.save(to_mmpretrain(sd), tmp_path / 'mmpretrain.pth')
    clf = RepLKNetClassifier(arch=arch, num_classes=10)
    report = load_pretrained(clf, str(tmp_path / 'mmpretrain.pth'), prefix='backbone.')
    assert report.source_format == 'mmpretrain'
    assert_loaded(clf, sd)

    down = {'backbone.' + k: v for k, v in sd.items() if not k.startswith(('norm.',
                                                                          'head.'))}
    down['decode_head.conv_seg.weight'] = torch.zeros(3, 8, 1, 1)
    torch.save({'state_dict': down, 'meta': {}}, tmp_path / 'upernet.pth')
    backbone = RepLKNet(arch=arch)
    report = load_pretrained(backbone, str(tmp_path / 'upernet.pth'))
    assert report.source_format == 'downstream'
    assert report.dropped == ['decode_head.conv_seg.weight']
    assert_loaded(backbone, sd)


def test_init_cfg_pretrained_and_xl_style_fresh_output_norms(tmp_path):
    arch, sd = tiny_official()
    torch.save(sd, tmp_path / 'official.pth')
    model = RepLKNet(arch=arch, norm_intermediate_features=True,
                     init_cfg=dict(type='Pretrained',
                                   checkpoint=str(tmp_path / 'official.pth'),
                                   prefix='backbone.'))
    model.init_weights()
    assert_loaded(model, sd)
    assert torch.equal(model.stages[2].norm.weight, torch.ones(16))  # stays fresh


def test_convert_tool_round_trip_full_31b(tmp_path):
    sd = random_state_dict(official_shapes(*ARCHS['31B']))
    torch.save({'model': sd}, tmp_path / 'RepLKNet-31B_ImageNet-1K_224.pth')
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools/convert_checkpoint.py'),
         str(tmp_path / 'RepLKNet-31B_ImageNet-1K_224.pth'),
         str(tmp_path / 'pretrain/replknet31b.pth')], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'arch 31B' in result.stdout and '1171 tensors loaded' in result.stdout
    converted = torch.load(tmp_path / 'pretrain/replknet31b.pth', weights_only=True)
    assert len(converted['state_dict']) == 1171
    model = RepLKNet(arch='31B', init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'pretrain/replknet31b.pth'),
        prefix='backbone.'))
    model.init_weights()
    assert_loaded(model, sd)


def test_merged_checkpoint_needs_deploy_and_loads_folded(tmp_path):
    arch, sd = tiny_official(num_classes=0)
    ref = RepLKNet(arch=arch)
    ref.load_state_dict(sd)
    ref.eval()
    merged = reparameterize_state_dict(sd)
    with pytest.raises(ValueError, match='build the model with deploy=True'):
        from mmreplk.models import load_replknet_state_dict
        load_replknet_state_dict(RepLKNet(arch=arch), merged)
    # an official merged checkpoint (lkb_reparam, BNs elsewhere) and a training-form one
    official_merged = dict(sd)
    for k in [k for k in sd if '.large_kernel.' in k]:
        del official_merged[k]
    official_merged.update({k: v for k, v in merged.items() if 'lkb_reparam' in k})
    x = torch.randn(1, 3, 48, 48)
    for i, ckpt in enumerate((official_merged, sd)):
        torch.save(ckpt, tmp_path / f'm{i}.pth')
        deploy = RepLKNet(arch=arch, deploy=True).eval()
        report = load_pretrained(deploy, str(tmp_path / f'm{i}.pth'))
        assert report.folded
        with torch.no_grad():
            for a, b in zip(ref(x), deploy(x)):
                assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_mismatched_arch_and_missing_keys_are_named(tmp_path):
    _, sd = tiny_official(small=None)
    torch.save(sd, tmp_path / 'no_small.pth')
    with pytest.raises(ValueError) as info:
        load_pretrained(RepLKNet(arch=dict(TINY, small_kernel=3)),
                        str(tmp_path / 'no_small.pth'))
    assert 'missing keys' in str(info.value) and 'small_conv' in str(info.value)
    with pytest.raises(ValueError) as info:
        load_pretrained(RepLKNet(arch=dict(TINY, channels=[16, 16, 16, 24])),
                        str(tmp_path / 'no_small.pth'))
    assert 'shape mismatches' in str(info.value) and 'another arch' in str(info.value)


def test_corrupt_truncated_and_missing_files(tmp_path):
    arch, sd = tiny_official()
    good = tmp_path / 'good.pth'
    torch.save(sd, good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:2000])
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint at all')
    for bad in (truncated, garbage):
        with pytest.raises(ValueError, match='corrupt or truncated'):
            load_pretrained(RepLKNet(arch=arch), str(bad))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_pretrained(RepLKNet(arch=arch), str(tmp_path / 'missing.pth'))
    torch.save({'foo': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='No RepLKNet weights'):
        extract_replknet_state_dict(torch.load(tmp_path / 'other.pth'))
    result = subprocess.run([sys.executable, str(ROOT / 'tools/convert_checkpoint.py'),
                             str(truncated), str(tmp_path / 'out.pth')],
                            capture_output=True, text=True)
    assert result.returncode == 1 and 'corrupt or truncated' in result.stderr
    assert 'Traceback' not in result.stderr and not (tmp_path / 'out.pth').exists()
