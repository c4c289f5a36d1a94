"""mmreplk.engine.compat, the one module that reaches into mmengine's internals: each
patch still meets the mmengine it patches (the signatures and private attributes it
relies on), so an mmengine upgrade that changes one fails here, not in a user's run."""
import inspect

import mmengine
import pytest
from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner

import mmreplk.engine  # noqa: F401  installs the patches
from mmreplk.engine import compat

#: What each patch relies on: the signature of the function it replaces or overrides.
SIGNATURES = {
    'Config.fromfile': ['filename', 'use_predefined_variables', 'import_custom_modules',
                        'use_environment_variables', 'lazy_import', 'format_python_code'],
    'Config._get_cfg_path': ['cfg_path', 'filename'],
    'load_url': ['url', 'model_dir', 'map_location', 'progress', 'check_hash',
                 'file_name', 'weights_only'],
}


@pytest.mark.parametrize('name', sorted(SIGNATURES))
def test_replaced_functions_keep_their_signature(name):
    assert list(inspect.signature(compat.REPLACED[name]).parameters) == SIGNATURES[name]


def test_the_running_mmengine_is_a_checked_release():
    assert mmengine.__version__ in compat.CHECKED, (
        f'mmengine {mmengine.__version__}: check mmreplk/engine/compat.py against it and '
        'add it to CHECKED')


@pytest.mark.parametrize('method, params', [
    ('_save_checkpoint_with_step', ['self', 'runner', 'step', 'meta']),
    ('_save_best_checkpoint', ['self', 'runner', 'metrics']),
])
def test_checkpoint_hook_methods_overridden_exist(method, params):
    assert list(inspect.signature(getattr(CheckpointHook, method)).parameters) == params
    source = inspect.getsource(CheckpointHook)
    for attribute in ('keep_ckpt_ids', 'filename_tmpl', 'file_backend', 'last_ckpt',
                      'best_ckpt_path', 'file_client_args'):
        assert f'self.{attribute}' in source, attribute
    # mmengine's best-checkpoint save removes the previous best through the backend
    assert 'self.file_backend.remove' in inspect.getsource(
        CheckpointHook._save_best_checkpoint)


def test_runner_resume_attributes():
    source = inspect.getsource(Runner.__init__) + inspect.getsource(Runner.load_or_resume)
    assert 'self._resume' in source and 'self._load_from' in source


def test_config_patches_are_installed_and_route_only_the_prefix(tmp_path):
    assert getattr(Config.fromfile, '_mmreplk_scope', False)
    plain = tmp_path / 'plain.py'
    plain.write_text('a = 1\n')
    assert Config.fromfile(str(plain)).a == 1  # any other path: mmengine unchanged
    assert Config.fromfile('mmreplk::_base_/replknet.py').replknet_31b['type'] == \
        'mmreplk.RepLKNet'


def test_url_loader_is_the_safe_one():
    import mmengine.runner.checkpoint as mmengine_checkpoint
    from mmreplk.engine.loading import load_from_url
    assert mmengine_checkpoint.load_url is load_from_url
    # mmengine's http loader looks the function up by name when it runs
    assert 'load_url(' in inspect.getsource(mmengine_checkpoint.load_from_http)
