"""One safe loader for every checkpoint a tool reads: ``weights_only=True`` everywhere
(also with torch's default forced to unsafe), one line per kind of bad file, and strict
loading of ``load_from`` / resume / test.py checkpoints by default."""
import ast
import re
import types
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import CheckpointLoader
from conftest import LEARN_CONFIG, LEARN_ITERS, ROOT, assert_clear_error, import_tool, run_tool
from official_format import official_shapes

import mmreplk.engine  # noqa: F401  the switch under test
from mmreplk.apis import load_config, with_engine_hooks
from mmreplk.engine import CheckpointCheckHook
from mmreplk.errors import CheckpointError, CheckpointNotFoundError
from mmreplk.models import ARCH_ZOO, describe_mismatch
from mmreplk.utils import load_checkpoint_file
from mmreplk.utils.io import cached_name


class _Payload:
    """Pickles as a call of ``builtins.exec`` that writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f'open({str(self.marker)!r}, "w").write("ran")', )


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """A checkpoint whose unpickling runs code, and torch's default forced to unsafe
    loading (as torch < 2.6 had it); ``.marker`` is written if the code ever runs."""
    path = tmp_path / 'hostile.pth'
    marker = tmp_path / 'marker'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': _Payload(marker)}, path)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    return types.SimpleNamespace(path=str(path), marker=marker)


def _refused(hostile, call, path: str = None) -> None:
    with pytest.raises(CheckpointError) as info:
        call()
    message = str(info.value)
    assert not hostile.marker.exists(), 'the pickle ran'
    assert '\n' not in message and (path or hostile.path) in message
    assert 'builtins.exec' in message and 'NOT loaded' in message
    assert 'none of its code ran' in message and 'weights_only=False' in message


def test_the_hostile_file_runs_when_loaded_unsafely(hostile):
    """The control: under the forced default a plain torch.load runs the payload."""
    torch.load(hostile.path)
    assert hostile.marker.read_text() == 'ran'


def test_every_torch_load_in_the_code_is_weights_only():
    calls = []
    for path in [*ROOT.glob('mmreplk/**/*.py'), *ROOT.glob('tools/**/*.py')]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == 'load' and ast.unparse(node.func.value) == 'torch'):
                safe = any(k.arg == 'weights_only' and getattr(k.value, 'value', 0) is True
                           for k in node.keywords)
                calls.append((str(path.relative_to(ROOT)), node.lineno, safe))
    assert calls, 'no torch.load found: the search is broken'
    assert [c for c in calls if not c[2]] == []


def test_mmengine_paths_load_safely(hostile, monkeypatch):
    """Runner load_from / resume, load_checkpoint, Pretrained on any module and URLs
    all reach mmengine's CheckpointLoader, which the engine points at the safe loader."""
    from mmengine.model import PretrainedInit
    from mmengine.runner import CheckpointLoader, load_checkpoint
    head = torch.nn.Linear(1, 1)
    _refused(hostile, lambda: load_checkpoint_file(hostile.path))
    _refused(hostile, lambda: CheckpointLoader.load_checkpoint(hostile.path))
    _refused(hostile, lambda: load_checkpoint(head, hostile.path))
    _refused(hostile, lambda: PretrainedInit(checkpoint=hostile.path)(head))
    monkeypatch.setattr(torch.hub, 'download_url_to_file',
                        lambda url, dst, progress: Path(dst).write_bytes(
                            Path(hostile.path).read_bytes()))
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(Path(hostile.path).parent))
    url = 'https://host/x/evil.pth'
    _refused(hostile, lambda: CheckpointLoader.load_checkpoint(url),
             str(Path(hostile.path).parent / 'checkpoints' / cached_name(url)))


def test_tools_load_safely(hostile, tmp_path):
    convert = import_tool('model_converters/convert_checkpoint.py')
    _refused(hostile, lambda: convert.convert(hostile.path, str(tmp_path / 'out.pth')))
    from mmreplk.analysis.erf_models import load_backbone_weights
    _refused(hostile, lambda: load_backbone_weights(torch.nn.Linear(1, 1),
                                                        hostile.path))
    demo = load_config(str(ROOT / LEARN_CONFIG))
    reparameterize = import_tool('model_converters/reparameterize.py')
    _refused(hostile, lambda: reparameterize.reparameterize(
        demo, hostile.path, str(tmp_path / 'out.pth'), str(tmp_path / 'out.py')))
    onnx = import_tool('deployment/pytorch2onnx.py')
    _refused(hostile, lambda: onnx.load_model(demo, hostile.path))
    _refused(hostile, lambda: CheckpointLoader.load_checkpoint(hostile.path))
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize('content, message', [
    (b'', r'is empty \(0 bytes\)'),
    (b'<html>404</html>', "is not a torch checkpoint.*starts with b'<htm'"),
    (b'PK\x03\x04' + b'\0' * 64, r'is corrupt or truncated \(68 bytes; '),
])
def test_bad_files_are_one_line(tmp_path, content, message):
    path = tmp_path / 'bad.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint_file(str(path))
    assert '\n' not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(CheckpointNotFoundError, match='checkpoint not found: .*none.pth'):
        load_checkpoint_file(str(tmp_path / 'none.pth'))
    with pytest.raises(CheckpointError, match='is a folder, not a checkpoint file'):
        load_checkpoint_file(str(tmp_path))


def _meta_state(arch: str, prefix: str = 'backbone.') -> dict:
    return {prefix + k: torch.empty(s, device='meta')
            for k, s in official_shapes(ARCH_ZOO[arch], num_classes=0).items()}


def test_mismatch_names_keys_and_the_arch_the_file_looks_like():
    model = dict(_meta_state('31B'), **{'decode_head.conv_seg.weight': torch.empty(2, 4)})
    problem = describe_mismatch(model, _meta_state('31L'))
    assert re.search(r'\d+ missing keys \(decode_head\.conv_seg\.weight\)', problem)
    assert re.search(r'\d+ shape mismatches, file vs model \(backbone\.', problem)
    assert problem.endswith('The file looks like RepLKNet-31L; the model is RepLKNet-31B')
    assert describe_mismatch(_meta_state('31B'), _meta_state('31B')) is None
    bn = {k: v for k, v in _meta_state('31B').items() if 'num_batches_tracked' not in k}
    assert describe_mismatch(_meta_state('31B'), bn) is None  # as mmengine loads


def _runner(model, resume=False, optimizer=None):
    return types.SimpleNamespace(model=model, _resume=resume, _load_from=None,
                                 optim_wrapper=types.SimpleNamespace(optimizer=optimizer))


def test_strict_loading_is_the_default_and_non_strict_turns_it_off():
    cfg = Config(dict(load_from='ckpt.pth', custom_hooks=[dict(type='EMAHook')]))
    hooks = with_engine_hooks(cfg).custom_hooks
    assert hooks[0]['type'] == 'EMAHook' and len(cfg.custom_hooks) == 1  # cfg kept
    check = next(h for h in hooks if h['type'] == 'mmreplk.CheckpointCheckHook')
    assert check['strict'] and check['filename'] == 'ckpt.pth'
    assert not next(h for h in with_engine_hooks(cfg, strict=False).custom_hooks
                    if h['type'] == 'mmreplk.CheckpointCheckHook')['strict']

    runner = _runner(torch.nn.Linear(2, 2))
    wide = {'state_dict': torch.nn.Linear(3, 2).state_dict()}
    with pytest.raises(CheckpointError, match=r'checkpoint w\.pth does not match the model '
                       r'of c\.py: 1 shape mismatches, file vs model '
                       r'\(weight \(2, 3\) vs \(2, 2\)\).*--non-strict'):
        CheckpointCheckHook('w.pth', 'c.py').after_load_checkpoint(runner, wide)
    CheckpointCheckHook('w.pth', 'c.py', strict=False).after_load_checkpoint(runner, wide)
    same = {'state_dict': {'module.' + k: v for k, v in runner.model.state_dict().items()}}
    CheckpointCheckHook('s.pth', 'c.py').after_load_checkpoint(runner, same)


@pytest.mark.parametrize('content, resume, message', [
    (torch.zeros(3), False, 'holds a Tensor, not a state dict of tensors'),
    ([1, 2], False, 'holds a list, not a state dict of tensors'),
    ({'state_dict': {'weight': 'x'}}, False, 'not a state dict of tensors'),
    ({'state_dict': {}}, True, 'holds weights but no training state'),
    ({'state_dict': {}, 'meta': {'iter': 2}, 'optimizer': {
        'param_groups': [{'params': [0, 1], 'lr': 1, 'betas': (0.9, 0.99)}]}}, True,
     'was saved with another optimizer than SGD'),
    ({'state_dict': {}, 'meta': {'iter': 2}, 'optimizer': {
        'param_groups': [{'params': [0], 'lr': 1, 'momentum': 0, 'dampening': 0,
                          'weight_decay': 0, 'nesterov': False, 'maximize': False,
                          'foreach': None, 'differentiable': False, 'fused': None}]}}, True,
     r'\(1 parameter groups of 1 tensors vs 1 of 2 here\)'),
])
def test_a_checkpoint_the_runner_cannot_use_is_one_line(content, resume, message):
    model = torch.nn.Linear(2, 2)
    runner = _runner(model, resume, torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(CheckpointError, match=message):
        CheckpointCheckHook('x.pth', 'c.py', strict=False).after_load_checkpoint(
            runner, content)


@pytest.mark.slow
def test_test_py_refuses_a_checkpoint_of_another_model(learned_seg, ade20k_root):
    """tools/test.py used to print an mIoU for any checkpoint (mmengine loads
    non-strictly); a decode head of other width is now one line before evaluating."""
    from conftest import loader_options
    ckpt = str(Path(learned_seg.work_dir) / f'iter_{LEARN_ITERS}.pth')
    result = run_tool('test.py', LEARN_CONFIG, ckpt, options=dict(
        loader_options(ade20k_root), **{'model.decode_head.channels': '32'}))
    assert_clear_error(result, f'checkpoint {ckpt} does not match the model of',
                       'shape mismatches, file vs model (decode_head.', '--non-strict')
    assert 'mIoU:' not in result.stdout + result.stderr  # no evaluation
