"""No tool overwrites a file that is one of its inputs or that it did not create in this
run (mmreplk.apis.check_outputs), generated over how an output can relate to the inputs,
and held by every tool that writes a file."""
import os

import pytest
import torch
from conftest import TINY_ARCH, import_tool

from mmreplk.apis import check_outputs
from mmreplk.apis.evaluation import check_out
from mmreplk.errors import ConfigError
from mmreplk.models import RepLKNet


def _relation(tmp_path, kind):
    """(output path, inputs, message or None) for one way an output relates to them."""
    source = tmp_path / 'in.pth'
    source.write_bytes(b'input')
    other = tmp_path / 'existing.pth'
    other.write_bytes(b'kept')
    (tmp_path / 'folder').mkdir()
    (tmp_path / 'a_file').write_bytes(b'')
    hard = tmp_path / 'hard.pth'
    os.link(source, hard)
    soft = tmp_path / 'soft.pth'
    soft.symlink_to(source)
    return {
        'the input': (str(source), 'is also an input of this run'),
        'the input, relative': (os.path.relpath(source), 'is also an input of this run'),
        'a hard link to the input': (str(hard), 'is also an input of this run'),
        'a symbolic link to the input': (str(soft), 'is also an input of this run'),
        'an existing file': (str(other), 'exists; pass --force to replace it'),
        'a folder': (str(tmp_path / 'folder'), 'is a folder; name a file'),
        'below a file': (str(tmp_path / 'a_file' / 'x.pth'), 'a_file is a file'),
        'new, in a new folder': (str(tmp_path / 'new' / 'x.pth'), None),
    }[kind], [str(source)]


KINDS = ['the input', 'the input, relative', 'a hard link to the input',
         'a symbolic link to the input', 'an existing file', 'a folder', 'below a file',
         'new, in a new folder']


@pytest.mark.parametrize('force', [False, True])
@pytest.mark.parametrize('kind', KINDS)
def test_each_relation_of_output_and_inputs(tmp_path, monkeypatch, kind, force):
    monkeypatch.chdir(tmp_path)
    (path, message), inputs = _relation(tmp_path, kind)
    if force and kind == 'an existing file':
        message = None  # --force replaces a file that is not an input
    if message is None:
        check_outputs({'output': path}, inputs, force)
    else:
        with pytest.raises(ConfigError, match=message):
            check_outputs({'output': path}, inputs, force)


def test_two_outputs_naming_one_file(tmp_path):
    out = str(tmp_path / 'x.pth')
    with pytest.raises(ConfigError, match='the config and the checkpoint are the same'):
        check_outputs({'checkpoint': out, 'config': out}, [])


def _tiny_checkpoint(path):
    model = RepLKNet(arch=TINY_ARCH)
    torch.save({'state_dict': {'backbone.' + k: v for k, v in model.state_dict().items()},
                'meta': {'epoch': 3}, 'optimizer': {'x': 1}}, path)


@pytest.mark.parametrize('tool, argv', [
    ('model_converters/convert_checkpoint.py', ['{ckpt}', '{ckpt}']),
    ('model_converters/reparameterize.py', ['{config}', '{ckpt}', '{stem}.pth']),
    ('model_converters/reparameterize.py', ['{config}', '{ckpt}', 'out.pth',
                                            '--out-config', '{config}']),
    ('deployment/pytorch2onnx.py', ['{config}', '{ckpt}', '{ckpt}']),
])
def test_tools_never_write_over_their_inputs(tmp_path, monkeypatch, capsys, tool, argv):
    """`reparameterize.py mymodel.py ckpt.pth mymodel.pth` would write its deploy config
    to mymodel.py; `convert_checkpoint.py X X` would replace X: both are one line, and
    every input is left byte for byte as it was."""
    monkeypatch.chdir(tmp_path)
    ckpt, config = tmp_path / 'ckpt.pth', tmp_path / 'mymodel.py'
    _tiny_checkpoint(ckpt)
    config.write_text("_base_ = ['mmreplk::demo_upernet_replk-tiny_synthetic.py']\n")
    before = {p: p.read_bytes() for p in (ckpt, config)}
    args = [a.format(ckpt=ckpt, config=config, stem=tmp_path / 'mymodel') for a in argv]
    module = import_tool(tool)
    monkeypatch.setattr('sys.argv', [tool] + args)
    with pytest.raises(SystemExit) as exit_:
        module.run(module.main)
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'is also an input of this run' in err, err
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize('scope, out, message', [
    ('mmdet', 'results.json', 'must be a .pkl or .pickle file'),
    ('mmdet', '{ckpt}', 'must be a .pkl'),
    ('mmdet', '{pkl}', 'exists; pass --force'),
    ('mmseg', 'results.pkl', 'names a file: mmseg writes the predicted maps into a folder'),
    ('mmseg', '{pkl}', 'names a file'),
    ('mmseg', 'maps', None),
    ('mmdet', 'new.pkl', None),
])
def test_test_py_out(tmp_path, scope, out, message):
    """tools/test.py --out (mmreplk.apis.evaluation.check_out): mmdet's results file,
    mmseg's folder of maps."""
    ckpt, pkl = tmp_path / 'c.pth', tmp_path / 'old.pkl'
    ckpt.write_bytes(b'x')
    pkl.write_bytes(b'x')
    out = out.format(ckpt=ckpt, pkl=pkl)
    if message is None:
        check_out(out, scope, [str(ckpt)], False)
    else:
        with pytest.raises(ConfigError, match=message):
            check_out(out, scope, [str(ckpt)], False)
