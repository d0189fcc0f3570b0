"""Install mmdet_solo: ``pip install -e .``."""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_requirements(name):
    with open(os.path.join(HERE, 'requirements', name)) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith('#')]


def read_version():
    with open(os.path.join(HERE, 'mmdet_solo', '__init__.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


setup(
    name='mmdet_solo',
    version=read_version(),
    description='SOLO, Decoupled SOLO and SOLOv2 instance segmentation with Matrix NMS, in plain PyTorch',
    long_description=open(os.path.join(HERE, 'README.md')).read() if os.path.exists(
        os.path.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    license='BSD-2-Clause',
    python_requires='>=3.9',
    packages=find_packages(include=('mmdet_solo', 'mmdet_solo.*')),
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt'),
                    'optional': read_requirements('optional.txt')},
    zip_safe=False,
)
