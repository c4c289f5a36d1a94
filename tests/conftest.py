"""Shared fixtures: synthetic data sets in the real formats (written once per
session) and a runner for the command-line tools."""
import subprocess
import sys
from pathlib import Path
from typing import Dict, Sequence

import pytest

from mmreplk.testing.synthetic import make_ade20k, make_cityscapes, make_coco

ROOT = Path(__file__).resolve().parents[1]


def run_tool(tool: str, *args: str, options: Dict[str, str] = None,
             timeout: float = 300, env: dict = None,
             prefix: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run ``tools/<tool>`` (python or bash) from the repository root with
    ``--cfg-options`` built from ``options``; output is captured as text."""
    script = str(ROOT / 'tools' / tool)
    cmd = ['bash', script] if tool.endswith('.sh') else [sys.executable,
                                                          script]
    cmd += list(args)
    if options:
        cmd += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    return subprocess.run(
        list(prefix) + cmd, cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env=env)


@pytest.fixture(scope='session')
def ade20k_root(tmp_path_factory) -> str:
    return make_ade20k(str(tmp_path_factory.mktemp('ade20k')), 4, 2, 64)


@pytest.fixture(scope='session')
def cityscapes_root(tmp_path_factory) -> str:
    return make_cityscapes(str(tmp_path_factory.mktemp('cityscapes')), 4, 2,
                           64)


@pytest.fixture(scope='session')
def coco_root(tmp_path_factory) -> str:
    from mmdet.datasets import CocoDataset
    return make_coco(str(tmp_path_factory.mktemp('coco')),
                     CocoDataset.METAINFO['classes'], 4, 2, 128)
