"""tools/analysis_tools/benchmark_dwconv_memory.py and mmreplk.ops.benchmark_memory: argument
checks, one measurement, the
table row (the figures themselves are a benchmark's, not a test's)."""
import argparse

import pytest
from conftest import import_tool

from mmreplk.ops import benchmark_memory


@pytest.fixture(scope='module')
def tool():
    return import_tool('analysis_tools/benchmark_dwconv_memory.py')


@pytest.mark.parametrize('text', ['0x4', '2x', 'x4', '2*4', '-1x4'])
def test_bad_batch_by_channels_is_refused(tool, text):
    with pytest.raises(argparse.ArgumentTypeError, match='NxC'):
        tool.parse_nc(text)


@pytest.mark.parametrize('argv', [['--sizes', '0'], ['--kernel', '30']])
def test_bad_sizes_and_even_kernels_exit_with_a_usage_error(tool, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tool.parse_args(argv)
    assert exit_info.value.code == 2 and 'error:' in capsys.readouterr().err


@pytest.mark.parametrize('kind', ['wgrad', 'fb'])
def test_one_measurement_and_its_row(kind):
    fast = benchmark_memory.measure(kind, 'fast', 1, 2, 24, 9)
    assert fast['peak_mb'] >= 0 and fast['seconds'] > 0
    row = benchmark_memory.row(kind, 1, 2, 24, 9, {'stock': dict(peak_mb=10., seconds=2.),
                                      'fast': dict(peak_mb=5., seconds=1.)})
    assert row == [kind, '1', '2', '24x24', '9', '10', '5', '0.50', '2.00', '1.00']
    failed = benchmark_memory.row(kind, 1, 2, 24, 9, {'stock': dict(error='exit -9: killed'),
                                         'fast': fast})
    assert failed[5] == 'exit -9: killed' and failed[7] == '-'
