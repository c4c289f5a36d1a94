"""Reading a config for a tool or a runner: ``mmreplk::`` names, ``--cfg-options`` merged
and checked, the host scope (mmseg or mmdet), the work dir."""
import os.path as osp
from typing import Optional, Sequence, Tuple

from mmengine.config import Config

from mmreplk.config_scope import PREFIX
from mmreplk.errors import ConfigError

from .validate import (SECTIONS, check_cfg_options, check_config_keys, check_values,
                       check_wiring, fit_schedule, training_length)

HOSTS = ('mmseg', 'mmdet')


def read_config(path: str) -> Config:
    """``Config.fromfile(path)``; any error of reading it is a :class:`ConfigError`."""
    try:
        return Config.fromfile(path)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(f'config {path} cannot be read: it inherits from itself '
                          '(a circular _base_)') from None
    except Exception as e:  # the file is the user's Python or YAML: any error is theirs
        where = ''
        if isinstance(e, SyntaxError):  # mmengine parses the text: no file name of its own
            named = e.filename not in (None, '<unknown>', path)
            where = f' ({e.filename}, line {e.lineno})' if named else f' (line {e.lineno})'
        text = (e.msg if isinstance(e, SyntaxError) else str(e)).strip()
        text = text.splitlines()[0] if text else ''
        raise ConfigError(f'config {path} cannot be read{where}: {type(e).__name__}: '
                          f'{text}') from None


def load_config(path: str, cfg_options: Optional[dict] = None,
                checked: Sequence[str] = ('model', )) -> Config:
    """Load ``path`` (a file, or ``mmreplk::NAME``; its ``custom_imports`` are imported)
    and merge ``--cfg-options``: options that cannot take effect are warned about, a
    new training length rescales the schedule, and the keys, types and values of the
    ``checked`` sections are checked (:mod:`.validate`). Whatever reading the file raises (a
    syntax error, a missing or circular ``_base_``, a ``custom_imports`` typo, broken
    YAML) is one :class:`ConfigError` naming the file."""
    if not path.startswith(PREFIX) and not osp.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    cfg = read_config(path)
    length = training_length(cfg)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
        check_cfg_options(cfg, cfg_options)
    fit_schedule(cfg, length, cfg_options)
    if cfg.get('model') is not None and cfg.get('default_scope'):
        check_config_keys(cfg, sections=checked)
    check_values(cfg, sections=checked)
    check_wiring(cfg, sections=checked)
    return cfg


def load_run_config(path: str, cfg_options: Optional[dict], work_dir: Optional[str],
                    launcher: str) -> Config:
    """:func:`load_config` for a runner (train.py, test.py): an mmseg or mmdet config,
    its launcher and work dir set. The work dir is, in order: ``--work-dir``, the
    config's ``work_dir``, ``./work_dirs/<config name>`` (as mmseg and mmdet do)."""
    cfg = load_config(path, cfg_options, checked=SECTIONS)
    host_scope(cfg)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def host_scope(cfg: Config) -> str:
    """The config's ``default_scope``, which must be mmseg or mmdet."""
    scope = cfg.get('default_scope')
    if scope not in HOSTS:
        raise ConfigError(
            f"the config's default_scope is {scope!r}; these tools run "
            f"{' and '.join(HOSTS)} configs (inherit their default runtime)")
    return scope


def splits_of(cfg: Config, names: Sequence[str]) -> Tuple[str, ...]:
    """The dataloader splits among ``names`` the config actually uses."""
    return tuple(n for n in names
                 if cfg.get(f'{n}_dataloader') and cfg.get(f'{n}_cfg'))
