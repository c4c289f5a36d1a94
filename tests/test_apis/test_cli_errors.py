"""Every exception a user can cause ends in one `error:` line at the tool boundary
(mmreplk.apis.cli.run), generated over the kinds of mistake; a bug keeps its traceback;
--debug keeps every traceback. Reading a config: every way a file can be broken is one
ConfigError naming it (mmreplk.apis.load_config)."""
import errno
import sys
from urllib.error import HTTPError, URLError

import pytest

from mmreplk.apis import load_config
from mmreplk.apis.cli import run
from mmreplk.errors import ConfigError

USER_ERRORS = {
    'a missing file': (FileNotFoundError(errno.ENOENT, 'No such file or directory',
                                         'data/x.png'),
                       'No such file or directory: data/x.png'),
    'a folder given as a file': (IsADirectoryError(errno.EISDIR, 'Is a directory', 'out'),
                                 'Is a directory: out'),
    'no permission': (PermissionError(errno.EACCES, 'Permission denied', '/x'),
                      'Permission denied: /x'),
    'a full disk': (OSError(errno.ENOSPC, 'No space left on device', 'w/cfg.py'),
                    'no space left on the device writing w/cfg.py'),
    'an HTTP 404': (HTTPError('https://h/m.pth', 404, 'Not Found', {}, None),
                    'could not download https://h/m.pth: HTTP 404 Not Found'),
    'no network': (URLError('Name or service not known'),
                   'could not reach a URL: Name or service not known'),
    'a syntax error': (SyntaxError('invalid syntax', ('c.py', 3, 1, 'x = (', 3, 1)),
                       'syntax error in c.py, line 3: invalid syntax'),
    'a circular import': (RecursionError('maximum recursion depth exceeded'),
                          'recursion too deep'),
    'a custom_imports typo': (ModuleNotFoundError("No module named 'mmreplkk'",
                                                  name='mmreplkk'),
                              "no module named 'mmreplkk'"),
    'a registry typo': (KeyError('UPerHaed is not in the mmseg::model registry. Please '
                                 'check whether the value of `UPerHaed` is correct'),
                        'UPerHaed is not in the mmseg::model registry'),
    'a project error': (ConfigError('config error: model.backbon ...'),
                        'config error: model.backbon'),
}


def _raise(error):
    def main():
        raise error
    return main


@pytest.mark.parametrize('kind', sorted(USER_ERRORS))
def test_a_user_error_is_one_line(kind, capsys, monkeypatch):
    error, line = USER_ERRORS[kind]
    monkeypatch.setattr(sys, 'argv', ['tool.py'])
    with pytest.raises(SystemExit) as exit_:
        run(_raise(error))
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err == f'error: {err[7:]}' and err.count('\n') == 1 and line in err, err
    monkeypatch.setattr(sys, 'argv', ['tool.py', '--debug'])
    with pytest.raises(type(error)):
        run(_raise(error))


@pytest.mark.parametrize('bug', [KeyError('weight'), TypeError('bad operand'),
                                 ZeroDivisionError('division by zero'),
                                 OSError('no filename')])
def test_a_bug_keeps_its_traceback(bug, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['tool.py'])
    with pytest.raises(type(bug)):
        run(_raise(bug))


BROKEN_CONFIGS = {
    'a syntax error': ({'c.py': 'model = dict(\n'}, r'\(line 1\): SyntaxError'),
    'a missing _base_': ({'c.py': "_base_ = ['nowhere.py']\n"}, 'nowhere.py'),
    'a circular _base_': ({'c.py': "_base_ = ['d.py']\n", 'd.py': "_base_ = ['c.py']\n"},
                          'c.py'),
    'a custom_imports typo': ({'c.py': "custom_imports = dict(imports=['mmreplkk'])\n"},
                              'mmreplkk'),
    'broken YAML': ({'c.yml': 'model: [1, 2\n'}, 'c.yml'),
    'a name error': ({'c.py': 'model = dict(x=undefined_name)\n'}, 'undefined_name'),
}


@pytest.mark.parametrize('kind', sorted(BROKEN_CONFIGS))
def test_a_broken_config_is_one_config_error_naming_the_file(kind, tmp_path):
    files, detail = BROKEN_CONFIGS[kind]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    path = str(tmp_path / next(iter(files)))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f'config {path} cannot be read'), message
    assert '\n' not in message
    import re
    assert re.search(detail, message), message
