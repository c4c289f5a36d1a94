"""tools/install.sh: its failure modes end with a message that names the cause.

The script runs against a stand-in Python interpreter that reports a chosen state of the
environment, so no package is installed or built here.
"""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = '''#!{real}
import os, subprocess, sys
mode = os.environ['FAKE_MODE']
args = sys.argv[1:]
if args[:1] and args[0].endswith('install_probe.py'):  # the status probe of install.sh
    state = dict(torch='2.13.0', mmengine='None', mmcv='None', mmcv_ops='None',
                 mmseg='None', mmdet='None', ftfy='None', pytest='9.0', xdist='3.8',
                 hypothesis='6.1', mmreplk='None')
    if mode == 'mmcv22':
        state['mmcv'] = '2.2.0'
    if mode == 'no_extras':  # a complete stack without mim, mmdeploy and onnxscript
        state.update(mmengine='0.10.7', mmcv='2.1.0', mmcv_ops='ok', mmseg='1.2.2',
                     mmdet='3.3.0', ftfy='6.3', mmreplk='ok')
    print('\\n'.join(f'{{k}}={{v}}' for k, v in state.items()))
    sys.exit(0)
if args[:2] == ['-m', 'pip']:
    if 'PIP_LOG' in os.environ:
        with open(os.environ['PIP_LOG'], 'a') as log:
            log.write(' '.join(args[2:]) + '\\n')
    if mode == 'offline' and 'install' in args:
        print("WARNING: Retrying ... NewConnectionError('Failed to establish a new "
              "connection: [Errno -3] Temporary failure in name resolution')")
        print('ERROR: No matching distribution found for setuptools<81,>=77')
        sys.exit(1)
    sys.exit(0)
code = args[1] if args[:1] == ['-c'] else ''
if 'pkg_resources' in code:
    sys.exit(1 if mode == 'setuptools81' else 0)
if 'torch.cuda' in code:
    sys.exit(1)
sys.exit(subprocess.call([{real!r}] + args))
'''


def run_install(tmp_path: Path, mode: str, **env) -> subprocess.CompletedProcess:
    fake = tmp_path / 'python'
    fake.write_text(FAKE_PYTHON.format(real=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    full_env = dict(os.environ, PYTHON=str(fake), FAKE_MODE=mode, **env)
    return subprocess.run(['bash', str(ROOT / 'tools/install.sh')], env=full_env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize('mode, env, message', [
    ('offline', {}, 'could not fetch'),
    ('setuptools81', {}, 'no pkg_resources'),
    ('mmcv22', {}, 'refuse mmcv >= 2.2.0'),
    ('nocompiler', {'CXX': '/nonexistent/c++'}, 'no C++ compiler found'),
])
def test_install_failure_messages(tmp_path, mode, env, message):
    result = run_install(tmp_path, mode, **env)
    assert result.returncode != 0
    assert 'ERROR' in result.stderr and message in result.stderr, result.stderr


def test_install_check_reports_incomplete_stack(tmp_path):
    fake = tmp_path / 'python'
    fake.write_text(FAKE_PYTHON.format(real=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    result = subprocess.run(
        ['bash', str(ROOT / 'tools/install.sh'), '--check'], capture_output=True,
        text=True, env=dict(os.environ, PYTHON=str(fake), FAKE_MODE='mmcv22'))
    assert result.returncode == 1
    assert 'mmcv: 2.2.0' in result.stdout


def test_a_complete_stack_gets_the_optional_packages_without_their_pins(tmp_path):
    """openmim and mmdeploy go in with --no-deps, after exactly what they import."""
    log = tmp_path / 'pip.log'
    result = run_install(tmp_path, 'no_extras', PIP_LOG=str(log))
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    no_deps = [c.split()[-1] for c in calls if '--no-deps' in c]
    assert no_deps == ['openmim==0.3.9', 'mmdeploy==1.3.1']
    others = ' '.join(c for c in calls if '--no-deps' not in c).split()
    for imported in ('requests', 'rich', 'click', 'tabulate', 'pandas', 'model-index',
                     'aenum', 'onnx>=1.16', 'onnxruntime>=1.18'):
        assert imported in others, imported
    assert 'opendatalab' not in others and not any('protobuf' in c for c in others)
