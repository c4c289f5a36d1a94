"""Install mmreplk. `bash tools/install.sh` sets up the whole OpenMMLab stack.

As mmseg and mmdet do, the package carries what OpenMMLab's `mim` and the `mmreplk::`
config prefix look for in `mmreplk/.mim/`: the configs, the tools and the model index.
A wheel or a regular install gets copies; an editable install gets symbolic links in the
checkout (`mmreplk/.mim/configs -> ../../configs`, ...), so the checkout's files are the
ones used.
"""
import os
import os.path as osp
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
MIM_ENTRIES = ('configs', 'tools', 'model-index.yml')
IGNORED = shutil.ignore_patterns('__pycache__', '*.pyc')


def link_mim_entries(mim_dir: str) -> None:
    """Point ``mim_dir/<entry>`` at the checkout's entries (relative links)."""
    os.makedirs(mim_dir, exist_ok=True)
    for entry in MIM_ENTRIES:
        dst = osp.join(mim_dir, entry)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        os.symlink(osp.relpath(osp.join(ROOT, entry), mim_dir), dst)


def copy_mim_entries(mim_dir: str) -> None:
    """Copy the checkout's entries into ``mim_dir`` (replacing what is there)."""
    if osp.lexists(mim_dir):
        shutil.rmtree(mim_dir)
    os.makedirs(mim_dir)
    for entry in MIM_ENTRIES:
        src, dst = osp.join(ROOT, entry), osp.join(mim_dir, entry)
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=IGNORED)
        else:
            shutil.copy2(src, dst)


class BuildPyWithMim(build_py):
    """``build_py`` that also provides ``mmreplk/.mim``."""

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            link_mim_entries(osp.join(ROOT, 'mmreplk', '.mim'))
        else:
            copy_mim_entries(osp.join(self.build_lib, 'mmreplk', '.mim'))


setup(cmdclass={'build_py': BuildPyWithMim})
