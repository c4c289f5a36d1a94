"""The status probe of tools/install.sh: one line ``NAME=VALUE`` per component of the
stack, VALUE its version, ``ok``, or ``None`` when missing or broken. Run from ``/`` with
``MMREPLK_ROOT`` set to the checkout, so that only installed packages are seen."""
import importlib
import importlib.util
import os
from typing import Optional


def version(module: str) -> Optional[str]:
    """The module's version ('?' if it has none), None if it does not import."""
    try:
        return getattr(importlib.import_module(module), '__version__', '?')
    except Exception:  # a broken install is as good as none
        return None


def mmcv_ops() -> Optional[str]:
    """'ok' if mmcv's compiled ops load."""
    try:
        from mmcv.utils import ext_loader
        ext_loader.load_ext('_ext', ['nms'])
        return 'ok'
    except Exception:
        return None


def mmreplk_here() -> Optional[str]:
    """'ok' if the installed mmreplk is this checkout (CI clones elsewhere)."""
    spec = importlib.util.find_spec('mmreplk')
    root = os.environ.get('MMREPLK_ROOT', '')
    if not (spec and spec.origin and root):
        return None
    location = os.path.dirname(os.path.dirname(os.path.abspath(spec.origin)))
    return 'ok' if os.path.samefile(location, root) else None


def main() -> None:
    state = {name: version(name) for name in ('torch', 'mmengine', 'mmcv')}
    state['mmcv_ops'] = mmcv_ops()
    state.update({name: version(name) for name in (
        'mmseg', 'mmdet', 'ftfy', 'pytest', 'xdist', 'hypothesis', 'mim', 'onnxscript')})
    # importing mmdeploy.apis takes seconds: its package and the one import it lacks suffice
    found = importlib.util.find_spec('mmdeploy') and importlib.util.find_spec('aenum')
    state['mmdeploy'] = 'ok' if found else None
    state['mmreplk'] = mmreplk_here()
    for name, value in state.items():
        print(f'{name}={value}')


if __name__ == '__main__':
    main()
