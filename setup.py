"""Install mmreplk. Use `bash tools/install.sh` for the whole OpenMMLab stack."""
from setuptools import setup

setup()
