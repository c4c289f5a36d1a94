"""tools/analysis_tools/benchmark_dwconv.py and mmreplk.ops.benchmark: workloads and shape
sets, the rows, the markdown
and JSON reports, and the training-step line naming what is missing without
mmreplk.models' dependencies (no timing: the numbers come from a fixed dict)."""
import json
import sys

from conftest import import_tool

from mmreplk.ops import benchmark
from mmreplk.ops.kernel_model import WORKLOADS


def _tool():
    return import_tool('analysis_tools/benchmark_dwconv.py')


def test_cases_of_workloads_and_shape_sets():
    tool = _tool()
    assert benchmark.stage_shapes('31b-512', 'cuda') == [
        ('31b-512 s1', '', 16, 128, 128, 128, 31), ('31b-512 s2', '', 16, 256, 64, 64, 29),
        ('31b-512 s3', '', 16, 512, 32, 32, 27), ('31b-512 s4', '', 16, 1024, 16, 16, 13)]
    coco = benchmark.workload_cases('cascade-coco-1333x800')
    assert coco[0] == ('cascade-coco-1333x800 s1 b1', 'cascade-coco-1333x800', 1, 128, 200,
                       304, 31)
    assert coco[4][2] == 2 and len(coco) == 8  # batch 1 and 2, non-square maps
    args = tool.parse_args(['--device', 'cpu'])  # CPU default: the CPU shape sets
    assert args.workload == [] and args.shapes == ['31b-224', '31b-512']
    args = tool.parse_args(['--device', 'cpu', '--workload', 'upernet-ade20k-512'])
    assert args.shapes is None
    assert [c[2] for c in benchmark.cases(args.workload, [], 'cpu')] == [2, 2, 2, 2]
    assert set(WORKLOADS) >= {'upernet-ade20k-512', 'upernet-cityscapes-769',
                              'cascade-coco-1333x800', 'imagenet-224'}


def test_rows_markdown_json_and_missing_models(monkeypatch, tmp_path):
    tool = benchmark
    r = dict(fwd_stock=4., fwd_stock_cl=2., fwd_fast=1., fwd_fast_cl=3., fb_stock=10.,
             fb_fast=2.)
    row = tool.shape_row('imagenet-224 s4 b64', 'fp32', 8, 1024, 7, 9, 13, r, 'cpu', 0.)
    assert row[2] == 'cpu' and row[5] == '7x9' and row[11] == '2.00' and row[15] == '5.00'
    md = tool.markdown('env line', 'python x', tool.COLUMNS, [row], 'train line')
    assert '| shape | dtype | backend |' in md and '| imagenet-224 s4 b64 | fp32 | cpu |' in md
    assert md.count('\n|') == 3 and md.rstrip().endswith('train line')
    recs = tool.records(tool.COLUMNS, [row], ['imagenet-224'])
    assert recs[0]['batch'] == 8 and recs[0]['workload'] == 'imagenet-224'
    json.dumps(recs)
    monkeypatch.setitem(sys.modules, 'mmreplk.models', None)
    line = tool.train_step_line('cpu', None, None, 0.1)
    assert line.startswith('RepLKNet-31B train step: skipped') and 'mmengine' in line
