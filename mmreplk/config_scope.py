"""The ``mmreplk::`` config prefix: ``Config.fromfile('mmreplk::NAME')`` and
``_base_ = 'mmreplk::NAME'`` name the configs shipped in the installed package.

The package carries its configs as mmseg and mmdet do, in ``mmreplk/.mim/configs`` (copies
in a wheel or a regular install, links in an editable one; ``setup.py``). mmengine 0.10
resolves a ``scope::`` prefix only for the OpenMMLab projects of its fixed
``MODULE2PACKAGE`` table and only for names inside a sub-folder (``mmdet::dir/name.py``),
and ``Config.fromfile`` takes no prefix at all; mmreplk's configs are flat
(``configs/upernet_replk31b_ade20k.py``). :mod:`mmreplk.engine.compat` adds the prefix to
``Config.fromfile`` and to base-config resolution, for ``mmreplk::`` paths only: any other
path goes to mmengine unchanged. Importing :mod:`mmreplk.engine` calls it (the tools, and
through them ``mim train mmreplk``, import it before reading a config); importing
``mmreplk`` alone does not.

The configs are mmseg / mmdet configs that bring their own ``default_scope`` and their own
``mmseg::`` / ``mmdet::`` bases, so a config inherited through ``mmreplk::`` gets no
registry scope of its own (mmengine would otherwise mark its objects ``_scope_='mmreplk'``,
a scope that registers only the backbone).
"""
import os.path as osp

from mmreplk.errors import ConfigError

PREFIX = 'mmreplk::'
_PACKAGE = osp.dirname(osp.abspath(__file__))


def config_dir() -> str:
    """The folder of the configs: the installed package's ``.mim/configs``, or, in a
    source checkout that was never installed, ``configs/`` beside the package."""
    for folder in (osp.join(_PACKAGE, '.mim', 'configs'),
                   osp.join(osp.dirname(_PACKAGE), 'configs')):
        if osp.isdir(folder):
            return folder
    raise ConfigError(f'mmreplk at {_PACKAGE} has no configs (neither .mim/configs nor a '
                      'configs/ folder beside it): reinstall it with pip install')


def config_path(name: str) -> str:
    """The file of ``name`` (``'upernet_replk31b_ade20k.py'``, ``'_base_/replknet.py'``,
    with or without the ``mmreplk::`` prefix); :class:`ConfigError` if there is none."""
    relative = name[len(PREFIX):] if name.startswith(PREFIX) else name
    folder = config_dir()
    path = osp.normpath(osp.join(folder, relative))
    if not path.startswith(folder + osp.sep):
        raise ConfigError(f'{PREFIX}{relative} leaves the config folder {folder}: '
                          f'{PREFIX} names a config inside it (give a file path for '
                          'any other file)')
    if not osp.isfile(path):
        raise ConfigError(f'no config {PREFIX}{relative}: {path} does not exist '
                          f'(the configs are in {folder})')
    return path


__all__ = ['PREFIX', 'config_dir', 'config_path']
