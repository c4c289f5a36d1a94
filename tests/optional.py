"""Optional packages of the tests (openmim, mmdeploy): a test skips when the package is
not installed, and fails when it is installed but does not import (a missing dependency
of a --no-deps install)."""
import importlib
import importlib.metadata
from types import ModuleType

import pytest


def import_installed(distribution: str, module: str, extra: str) -> ModuleType:
    """``module`` of the installed ``distribution``; skip the test if it is not installed
    (``extra`` says how to install it), fail with the import error if it is."""
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f'{distribution} is not installed (optional: {extra})')
    try:
        return importlib.import_module(module)
    except ImportError as error:
        pytest.fail(f'{distribution} is installed but `import {module}` fails: {error} '
                    '(tools/install.sh step 8 installs what it imports)')
