"""The installed package, as a user of the OpenMMLab tools gets it: a wheel built from this
checkout, installed (not editable) into a scratch virtual environment that sees the shared
stack (torch, mmcv, mmseg, mmdet, openmim) but not the checkout. The package carries its
configs, tools and model index in mmreplk/.mim; ``mmreplk::`` configs load and inherit;
``mim train mmreplk`` trains a user's config derived from one; ``mim download`` and ``mim
search`` read the model index."""
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, loader_options
from mmengine.config import Config
from optional import import_installed

from mmreplk.apis import load_config
from mmreplk.errors import ConfigError

MIM_EXTRA = 'pip install ".[mim]" && pip install --no-deps openmim==0.3.9'
# the configs that start from the downloadable ImageNet-1K weights (the model index's Weights)
IMAGENET_1K = ['cascade_mask_rcnn_replk31b_coco', 'cascade_rcnn_replk31b_coco',
               'fcos_replk31b_coco', 'upernet_replk31b_ade20k', 'upernet_replk31b_cityscapes']


def _run(cmd, cwd, timeout=300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, text=True,
                            capture_output=True, timeout=timeout)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


@pytest.fixture(scope='session')
def scratch_python(tmp_path_factory) -> Path:
    """The python of a new virtual environment holding the built wheel of this checkout
    (its tracked and unignored files: what a clone holds)."""
    tmp = tmp_path_factory.mktemp('scratch_install')
    listed = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    src = tmp / 'src'
    for rel in listed.stdout.split():
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
          '-w', tmp / 'wheel', src], cwd=tmp)
    wheel = next((tmp / 'wheel').glob('mmreplk-*.whl'))
    _run([sys.executable, '-m', 'venv', '--system-site-packages', '--without-pip',
          tmp / 'venv'], cwd=tmp)
    python = tmp / 'venv' / 'bin' / 'python'
    _run([python, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', wheel], cwd=tmp)
    return python


USER_CONFIG = '''\
_base_ = 'mmreplk::demo_upernet_replk-tiny_synthetic.py'
train_cfg = dict(max_iters=2, val_interval=2)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, end=2)]
default_hooks = dict(checkpoint=dict(interval=2))
'''

CHECKS = '''
    import os, sys
    from mmengine.config import Config
    import mmreplk
    package = os.path.dirname(mmreplk.__file__)
    print('installed:', package.startswith(sys.prefix))
    mim = os.path.join(package, '.mim')
    shipped = ['configs/upernet_replk31b_ade20k.py', 'configs/_base_/replknet.py',
               'configs/metafile/upernet.yml', 'tools/train.py', 'tools/test.py',
               'tools/deployment/pytorch2onnx.py', 'model-index.yml']
    print('copies:', all(os.path.isfile(os.path.join(mim, p)) and not
                         os.path.islink(os.path.join(mim, p)) for p in shipped))
    try:
        Config.fromfile('mmreplk::upernet_replk31b_ade20k.py')
        print('before the engine: loads')
    except FileNotFoundError:
        print('before the engine: not found')
    import mmreplk.engine
    cfg = Config.fromfile('mmreplk::upernet_replk31b_ade20k.py')
    print('mmreplk:: loads:', cfg.model.backbone.type, cfg.model.backbone.arch,
          cfg.filename.startswith(mim))
    from mmreplk.apis import check_config, check_dataset  # the runtime, from the wheel
    check_config(cfg)
    print('apis: check_config passes')
    user = Config.fromfile('user_config.py')
    print('user config:', user.train_cfg.max_iters, user.default_hooks.checkpoint.interval,
          user.model.backbone.type, user.model.get('_scope_'))
    from mim.utils import get_installed_path, recursively_find
    print('mim finds:', [os.path.relpath(p, mim) for p in recursively_find(
        get_installed_path('mmreplk'), 'upernet_replk31b_ade20k.py', followlinks=True)])
    from modelindex.load_model_index import load
    print('model index:', len(load(os.path.join(mim, 'model-index.yml')).models))
    from mim import download, get_model_info
    weights = 'replknet-31B_3rdparty_in1k_20221118-fd08e268.pth'
    os.makedirs('dest')
    open(os.path.join('dest', weights), 'wb').close()  # as after a first download
    download('mmreplk', ['upernet_replk31b_ade20k'], dest_root='dest')
    dumped = Config.fromfile('dest/upernet_replk31b_ade20k.py')
    print('mim download:', sorted(os.listdir('dest')),
          dumped.model.backbone.init_cfg.checkpoint.endswith(weights))
    info = get_model_info('mmreplk', to_dict=True)
    print('mim search:', len(info), sorted(k for k, v in info.items()
                                           if str(v.get('weight')).endswith(weights)))
'''


def test_scope_prefix_in_a_checkout(tmp_path):
    """In a checkout that was never installed the prefix names configs/; a name that is
    not there is one clear error, and no path leaves the folder."""
    import mmreplk.engine  # noqa: F401  the switch
    cfg = Config.fromfile('mmreplk::upernet_replk31b_ade20k.py')
    # an editable install links mmreplk/.mim/configs to configs/: the same file either way
    assert os.path.samefile(cfg.filename, ROOT / 'configs' / 'upernet_replk31b_ade20k.py')
    (tmp_path / 'user_config.py').write_text(USER_CONFIG)
    user = Config.fromfile(str(tmp_path / 'user_config.py'))
    assert (user.train_cfg.max_iters, user.model.backbone.arch.layers) == (2, [1, 1, 1, 1])
    with pytest.raises(ConfigError, match=r'no config mmreplk::nope\.py: .* does not exist'):
        Config.fromfile('mmreplk::nope.py')
    for name in ('../setup.py', '../tools/train.py'):  # files that exist, outside the folder
        with pytest.raises(ConfigError, match=f'mmreplk::{re.escape(name)} leaves the '
                           'config folder'):
            Config.fromfile(f'mmreplk::{name}')
    tools_cfg = load_config('mmreplk::upernet_replk31b_ade20k.py')
    assert os.path.samefile(tools_cfg.filename, cfg.filename)  # the tools take it too


@pytest.mark.slow
def test_installed_package_configs_by_scope_and_mim_train(scratch_python, tmp_path,
                                                          ade20k_root):
    import_installed('openmim', 'mim', MIM_EXTRA)
    (tmp_path / 'user_config.py').write_text(USER_CONFIG)
    out = _run([scratch_python, '-c', textwrap.dedent(CHECKS)], cwd=tmp_path).stdout
    configs = len(list((ROOT / 'configs').glob('*.py')))
    prefixes = ('installed:', 'copies:', 'before the engine:', 'mmreplk::', 'apis:',
                'user config:',
                'mim finds:', 'model index:', 'mim download:', 'mim search:')
    assert [line for line in out.splitlines() if line.startswith(prefixes)] == [
        'installed: True',
        'copies: True',
        'before the engine: not found',
        'mmreplk:: loads: mmreplk.RepLKNet 31B True',
        'apis: check_config passes',
        'user config: 2 2 mmreplk.RepLKNet mmseg',
        "mim finds: ['configs/upernet_replk31b_ade20k.py']",
        f'model index: {configs}',
        # mim download: the ImageNet weights the config loads (present: no network) and
        # the config; mim search: every entry, the ImageNet-1K ones with their weights
        "mim download: ['replknet-31B_3rdparty_in1k_20221118-fd08e268.pth', "
        "'upernet_replk31b_ade20k.py'] True",
        f'mim search: {configs} {IMAGENET_1K}',
    ]

    work_dir = tmp_path / 'work'
    options = [f'{k}={v}' for k, v in loader_options(ade20k_root).items()]
    train = _run([scratch_python, '-m', 'mim', 'train', 'mmreplk', 'user_config.py',
                  '--work-dir', work_dir, '--cfg-options'] + options, cwd=tmp_path)
    script = Path(scratch_python).parent.parent
    assert f'{script}' in train.stdout and '.mim/tools/train.py' in train.stdout
    assert (work_dir / 'iter_2.pth').is_file()
    assert 'mIoU' in (train.stdout + train.stderr)

