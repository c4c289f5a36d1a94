"""Loading official / mmpretrain / downstream / converted weights, and clear failures."""
import pytest
import torch
from conftest import TINY_ARCH, assert_clear_error, import_tool, run_tool
from official_format import official_shapes, random_state_dict

from mmreplk.errors import CheckpointError, CheckpointNotFoundError
from mmreplk.models import (ARCH_ZOO, RepLKNet, RepLKNetClassifier,
                            extract_replknet_state_dict, load_pretrained,
                            load_replknet_state_dict, reparameterize_state_dict)

CONVERT = 'model_converters/convert_checkpoint.py'


def tiny_official(num_classes=10, small=3, **kw):
    arch = dict(TINY_ARCH, small_kernel=small)
    return arch, random_state_dict(official_shapes(arch, num_classes=num_classes, **kw))


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
    width = arch['channels'][2]
    assert torch.equal(model.stages[2].norm.weight, torch.ones(width))  # stays fresh


def test_init_cfg_list_converts_like_the_dict_form(tmp_path):
    """A list init_cfg: the other entries run first, then the Pretrained file goes
    through the converter (an mmpretrain file, which plain loading would not map)."""
    arch, sd = tiny_official()
    torch.save(to_mmpretrain(sd), tmp_path / 'mmpretrain.pth')
    model = RepLKNetClassifier(arch=arch, num_classes=10, init_cfg=[
        dict(type='Constant', val=0.5, layer='Linear'),
        dict(type='Pretrained', checkpoint=str(tmp_path / 'mmpretrain.pth'),
             prefix='backbone.')])
    model.init_weights()
    assert_loaded(model, sd)  # head.weight from head.fc.weight, not the constant
    broken = RepLKNet(arch=dict(arch, small_kernel=None), init_cfg=[
        dict(type='Pretrained', checkpoint=str(tmp_path / 'mmpretrain.pth'))])
    with pytest.raises(CheckpointError, match='unexpected keys'):
        broken.init_weights()


@pytest.mark.slow
def test_convert_tool_round_trip_full_31b(tmp_path):
    """In-process (the command line: test_convert_tool_one_line_error)."""
    shapes = official_shapes(ARCH_ZOO['31B'])
    sd = random_state_dict(shapes)
    torch.save({'model': sd}, tmp_path / 'RepLKNet-31B_ImageNet-1K_224.pth')
    report = import_tool(CONVERT).convert(
        str(tmp_path / 'RepLKNet-31B_ImageNet-1K_224.pth'),
        str(tmp_path / 'pretrain/replknet31b.pth'))
    assert 'arch 31B' in report and f'{len(shapes)} tensors loaded' in report
    converted = torch.load(tmp_path / 'pretrain/replknet31b.pth', weights_only=True)
    assert converted['state_dict'].keys() == {'backbone.' + k for k in shapes}
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
    with pytest.raises(CheckpointError, match='build the model with deploy=True'):
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
    with pytest.raises(CheckpointError) as info:
        load_pretrained(RepLKNet(arch=dict(TINY_ARCH, small_kernel=3)),
                        str(tmp_path / 'no_small.pth'))
    assert 'missing keys' in str(info.value) and 'small_conv' in str(info.value)
    with pytest.raises(CheckpointError) as info:
        wider = [2 * c for c in TINY_ARCH['channels']]
        load_pretrained(RepLKNet(arch=dict(TINY_ARCH, channels=wider)),
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
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    for bad, message in ((truncated, 'is corrupt or truncated'),
                         (garbage, "is not a torch checkpoint.*starts with b'not '"),
                         (empty, r'is empty \(0 bytes\)')):
        with pytest.raises(CheckpointError, match=message):
            load_pretrained(RepLKNet(arch=arch), str(bad))
    with pytest.raises(CheckpointNotFoundError, match='missing.pth'):
        load_pretrained(RepLKNet(arch=arch), str(tmp_path / 'missing.pth'))
    torch.save({'foo': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(CheckpointError, match='No RepLKNet weights'):
        extract_replknet_state_dict(torch.load(tmp_path / 'other.pth'))


@pytest.mark.slow
def test_convert_tool_one_line_error(tmp_path):
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(b'PK\x03\x04 not a whole zip')
    result = run_tool(CONVERT, str(truncated), str(tmp_path / 'out.pth'))
    assert_clear_error(result, 'corrupt or truncated', 'truncated.pth')
    assert not (tmp_path / 'out.pth').exists()
