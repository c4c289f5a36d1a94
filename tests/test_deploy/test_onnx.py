"""tools/deployment/pytorch2onnx.py and mmreplk.deploy: the re-parameterized segmentor
(image -> logits) or backbone exported to ONNX agrees with PyTorch in onnxruntime at the
export size and, exported with dynamic axes, at other sizes; bad input ends in one line."""
import subprocess

import pytest
import torch
from conftest import ROOT, TINY_ARCH, assert_clear_error, import_tool, randomize_bn
from mmengine.config import Config
from optional import import_installed

from mmreplk.analysis.complexity import build_from_config, count_batchnorms
from mmreplk.deploy.export_form import (AdaptiveAvgPool2dExport, BackboneExport,
                                        prepare_for_export, set_dwconv_path)
from mmreplk.deploy.onnx_export import (check_shapes, compare_with_onnxruntime,
                                        export_onnx, require)
from mmreplk.errors import ExportError
from mmreplk.models import RepLKNet
from mmreplk.ops import DepthwiseConv2d

onnx = pytest.importorskip('onnx', reason='the optional extra mmreplk[onnx]')
pytest.importorskip('onnxruntime', reason='the optional extra mmreplk[onnx]')

DEMO = 'configs/demo_upernet_replk-tiny_synthetic.py'
FCOS = 'configs/fcos_replk31b_coco.py'
TINY_FCOS = f'''_base_ = '{ROOT}/configs/fcos_replk31b_coco.py'
model = dict(backbone=dict(arch=dict(_delete_=True, **{TINY_ARCH}), init_cfg=None),
             neck=dict(in_channels={TINY_ARCH['channels']}))
'''


@pytest.fixture(scope='module')
def tool():
    return import_tool('deployment/pytorch2onnx.py')


def _checkpoint(path, config):
    model, _ = build_from_config(Config.fromfile(config))
    randomize_bn(model)
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


@pytest.fixture(scope='module')
def demo_checkpoint(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp('onnx') / 'demo.pth', DEMO)


def _call(tool, argv, capsys) -> subprocess.CompletedProcess:
    """tool.main(argv) under the tools' exit convention, in-process."""
    try:
        tool.run(lambda: tool.main(argv))
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out.out, out.err)


def test_adaptive_pooling_at_run_time_size_equals_pytorch():
    for (h, w), bins in [((2, 2), 6), ((7, 5), 3), ((16, 16), 6), ((13, 17), (2, 5))]:
        x = torch.randn(2, 3, h, w)
        expected = torch.nn.AdaptiveAvgPool2d(bins)(x)
        torch.testing.assert_close(AdaptiveAvgPool2dExport(bins)(x), expected)


@pytest.mark.parametrize('align_corners, simplify', [(False, True), (True, False)])
def test_dynamic_segmentor_export_agrees_at_three_sizes(tool, demo_checkpoint, tmp_path,
                                                        capsys, align_corners,
                                                        simplify):
    if simplify:
        pytest.importorskip('onnxslim', reason='--simplify needs onnxslim')
    out = tmp_path / 'demo.onnx'
    argv = [DEMO, demo_checkpoint, str(out), '--dynamic', '--latency-iters', '1']
    argv += ['--simplify'] if simplify else []
    if align_corners:  # as the Cityscapes config
        argv += ['--cfg-options', 'model.decode_head.align_corners=True']
    result = tool.main(argv)
    shapes = [r['shape'] for r in result['rows']]
    assert shapes == [(1, 3, 64, 64), (1, 3, 96, 80), (2, 3, 49, 47)]
    assert max(r['error'] for r in result['rows']) < 1e-5
    graph = onnx.load(str(out)).graph
    ops = {node.op_type for node in graph.node}
    assert 'BatchNormalization' not in ops and 'Conv' in ops
    dims = [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ['batch', '', 'height', 'width']
    printed = capsys.readouterr().out
    assert ('simplified' in printed) == simplify
    assert set(result['latency']) == {'pytorch', 'pytorch_stock', 'onnxruntime'}
    assert 'latency' in printed


def _export_and_check(module, reference, path, shapes):
    export_onnx(module, path, shapes[0], ['s0', 's1', 's2', 's3'], dynamic=True)
    return compare_with_onnxruntime(path, reference, shapes, scale=1.)


def test_export_form_and_default_path_export_standard_ops_at_every_size(tmp_path):
    """The export form and mmreplk's default path (dwconv_impl and channels_last as a
    user leaves them: under the tracer its depthwise convs run stock F.conv2d with the
    whole kernel) both export with dynamic sizes to standard ONNX ops only (Conv, no
    custom-op domain) that agree with PyTorch at three sizes. A disagreement fails the
    check."""
    backbone = RepLKNet(arch=TINY_ARCH)
    randomize_bn(backbone)
    reference = BackboneExport(backbone.eval())
    exported = BackboneExport(prepare_for_export(backbone))
    assert count_batchnorms(exported) == 0 and count_batchnorms(reference) > 0
    shapes = check_shapes((1, 3, 64, 64), dynamic=True)
    path = str(tmp_path / 'export_form.onnx')
    rows = _export_and_check(exported, reference, path, shapes)
    assert len(rows) == 12 and max(r['error'] for r in rows) < 1e-5

    default_path = BackboneExport(prepare_for_export(backbone))
    set_dwconv_path(default_path, stock=False)
    default_onnx = str(tmp_path / 'default.onnx')
    rows = _export_and_check(default_path, reference, default_onnx, shapes)
    assert max(r['error'] for r in rows) < 1e-5
    nodes = onnx.load(default_onnx).graph.node
    assert 'Conv' in {n.op_type for n in nodes}
    assert {n.domain for n in nodes} <= {'', 'ai.onnx'}

    with torch.no_grad():
        backbone.stages[3].blocks[0].pw2.conv.weight.mul_(1.01)
    with pytest.raises(ExportError, match='disagrees with PyTorch.*output s3'):
        compare_with_onnxruntime(path, reference, shapes, scale=1.)


def test_detector_backbone_only_export_at_a_fixed_size(tool, tmp_path):
    config = tmp_path / 'tiny_fcos.py'
    config.write_text(TINY_FCOS)
    ckpt = _checkpoint(tmp_path / 'fcos.pth', str(config))
    out = tmp_path / 'backbone.onnx'
    result = tool.main([str(config), ckpt, str(out), '--backbone-only', '--shape', '64',
                        '96', '--latency-iters', '0'])
    assert [r['output'] for r in result['rows']] == [f'stage{i}' for i in range(4)]
    assert {r['shape'] for r in result['rows']} == {(1, 3, 64, 96)}
    assert result['latency'] is None
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type
            .shape.dim]
    assert dims == [1, 3, 64, 96]


def test_bad_input_ends_in_one_line(tool, demo_checkpoint, tmp_path, capsys):
    missing = _call(tool, [DEMO, str(tmp_path / 'none.pth'), str(tmp_path / 'x.onnx')],
                    capsys)
    assert_clear_error(missing, 'checkpoint not found', 'none.pth')
    wrong = _call(tool, [DEMO, demo_checkpoint, str(tmp_path / 'x.onnx'), '--cfg-options',
                         'model.decode_head.num_classes=7'], capsys)
    assert_clear_error(wrong, 'does not match', 'shape mismatches, file vs model')
    assert not (tmp_path / 'x.onnx').exists()


def test_a_missing_optional_package_names_the_extra():
    with pytest.raises(ExportError, match=r'onnxruntime_x is not installed: pip install '
                       r'"mmreplk\[onnx\]"'):
        require('onnxruntime_x')


def test_detector_without_backbone_only_points_to_mmdeploy(tool, tmp_path, capsys):
    result = _call(tool, [FCOS, str(tmp_path / 'c.pth'), str(tmp_path / 'x.onnx')],
                   capsys)
    assert_clear_error(result, 'mmdet detector', 'mmdeploy', '--backbone-only')


def test_dynamo_exporter_writes_a_standard_conv(tmp_path):
    """torch.onnx.export(dynamo=True) of a default depthwise conv (the CPU fast path in
    eager): a standard Conv, no custom-op domain, the same output in onnxruntime."""
    import_installed('onnxscript', 'onnxscript', 'pip install "mmreplk[onnx]"')
    conv = DepthwiseConv2d(4, 4, 13, padding=6, groups=4).eval()
    x = torch.randn(1, 4, 16, 16)
    path = str(tmp_path / 'dw.onnx')
    torch.onnx.export(conv, (x, ), path, dynamo=True, input_names=['input'])
    nodes = onnx.load(path).graph.node
    assert [n.op_type for n in nodes] == ['Conv'] and nodes[0].domain in ('', 'ai.onnx')
    assert compare_with_onnxruntime(path, conv, [tuple(x.shape)], scale=1.)
