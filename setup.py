"""Install mmdet_solo: ``pip install --no-build-isolation -e .``.

The Matrix NMS operator (``mmdet_solo/ops/csrc``) is compiled here with
``torch.utils.cpp_extension``; torch must be importable at build time (hence
``--no-build-isolation``). The extension is optional: when it cannot be built the package still
installs and ``mmdet_solo.ops.matrix_nms`` uses its PyTorch reference.

Environment variables:

* ``MMDET_SOLO_NO_EXT=1``: do not build the extension at all.
* ``FORCE_CUDA=1``: build the CUDA kernel even without a visible GPU (needs a CUDA toolkit whose
  major version matches torch's); ``FORCE_CUDA=0`` never builds it. By default it is built when
  torch has CUDA, a toolkit is found (``CUDA_HOME``) and a GPU is visible.
* ``TORCH_CUDA_ARCH_LIST``: the GPU architectures to compile for (e.g. ``"8.0;9.0"``).
* ``MMDET_SOLO_EXT_REQUIRED=1``: fail the install instead of falling back (CPU-only build if the
  CUDA part fails, then no extension if the C++ part fails).
"""
import os
import platform
import re
import shutil
import sys
import warnings

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join('mmdet_solo', 'ops', 'csrc')
EXT_NAME = 'mmdet_solo.ops._C'


def read_requirements(name):
    with open(os.path.join(HERE, 'requirements', name)) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith('#')]


def read_version():
    with open(os.path.join(HERE, 'mmdet_solo', '__init__.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def _env_flag(name):
    return os.environ.get(name, '').strip().lower() in ('1', 'true', 'yes', 'on')


def _say(msg):
    # setuptools/pip show stderr with -v; keep the messages greppable.
    print(f'mmdet_solo setup: {msg}', file=sys.stderr)


def _cxx_flags():
    if os.name == 'nt':
        return ['/O2', '/fp:precise', '/openmp'], []
    cflags = ['-O3', '-ffp-contract=off']
    ldflags = []
    if platform.system() == 'Linux':  # at::parallel_for needs OpenMP in this translation unit
        cflags.append('-fopenmp')
        ldflags.append('-fopenmp')
    return cflags, ldflags


def _want_cuda(torch, cuda_home):
    force = os.environ.get('FORCE_CUDA', '').strip()
    if force == '0':
        return False
    if torch.version.cuda is None or cuda_home is None:
        if force == '1':
            _say(f'FORCE_CUDA=1 but torch.version.cuda={torch.version.cuda}, CUDA_HOME={cuda_home}:'
                 ' building the CPU kernel only')
        return False
    return force == '1' or torch.cuda.is_available()


def _has_cudart(home):
    return any(os.path.exists(os.path.join(home, d, 'libcudart.so')) for d in ('lib64', 'lib'))


def _resolve_cuda_home():
    """torch guesses CUDA_HOME as nvcc's grandparent (/usr/local/bin/nvcc -> /usr/local) even when
    that has no libcudart to link; then prefer the toolkit nvcc links to, or /usr/local/cuda."""
    if os.name == 'nt' or os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH'):
        return
    nvcc = shutil.which('nvcc')
    if not nvcc:
        return
    guess = os.path.dirname(os.path.dirname(nvcc))
    if _has_cudart(guess):
        return
    for home in (os.path.dirname(os.path.dirname(os.path.realpath(nvcc))), '/usr/local/cuda'):
        if os.path.exists(os.path.join(home, 'include', 'cuda_runtime.h')) and _has_cudart(home):
            os.environ['CUDA_HOME'] = home
            return


def make_extensions():
    """The extension and the build_ext command, or ([], {}) when it is not to be built."""
    if _env_flag('MMDET_SOLO_NO_EXT'):
        _say('MMDET_SOLO_NO_EXT=1: not building the C++/CUDA extension')
        return [], {}
    _resolve_cuda_home()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            import torch
            from torch.utils.cpp_extension import (CUDA_HOME, BuildExtension, CppExtension,
                                                   CUDAExtension)
    except Exception as exc:  # torch missing (build isolation?) or broken
        _say(f'torch is not importable ({exc}); not building the extension '
             '(install with --no-build-isolation after torch)')
        return [], {}

    required = _env_flag('MMDET_SOLO_EXT_REQUIRED')
    cflags, ldflags = _cxx_flags()
    cpp_sources = [os.path.join(CSRC, name)
                   for name in ('matrix_nms.cpp', 'paste_masks.cpp', 'mask_scan.cpp',
                                'cpu_cache.cpp')]
    cu_sources = [os.path.join(CSRC, 'matrix_nms_cuda.cu')]
    depends = [os.path.join(CSRC, 'matrix_nms.h')]

    def cpu_extension():
        ext = CppExtension(EXT_NAME, cpp_sources, depends=depends,
                           extra_compile_args={'cxx': list(cflags)}, extra_link_args=list(ldflags))
        ext.optional = not required  # setuptools then skips a missing .so on `pip install -e .`
        return ext

    if _want_cuda(torch, CUDA_HOME):
        _say(f'building the CPU and CUDA kernels (CUDA_HOME={CUDA_HOME}, '
             f"TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', '<torch default>')})")
        ext = CUDAExtension(EXT_NAME, cpp_sources + cu_sources, depends=depends,
                            extra_compile_args={'cxx': list(cflags), 'nvcc': ['-O3']},
                            extra_link_args=list(ldflags))
        ext.optional = False  # failures reach build_extensions, which falls back to the CPU kernel
        ext.mmdet_solo_cuda = True
    else:
        _say('building the CPU kernel (no CUDA build: set FORCE_CUDA=1 to force it)')
        ext = cpu_extension()

    class BuildExtWithFallback(BuildExtension):
        """CUDA build failing -> CPU-only build; C++ build failing -> no extension + a warning."""

        def build_extensions(self):
            saved = {k: self.compiler.__dict__[k] for k in ('compile', '_compile', 'spawn')
                     if k in self.compiler.__dict__}
            saved_src_ext = list(self.compiler.src_extensions)
            try:
                super().build_extensions()
                return
            except Exception as exc:
                if not any(getattr(e, 'mmdet_solo_cuda', False) for e in self.extensions):
                    if required:
                        raise
                    self._warn_no_ext(exc)
                    return
                _say(f'building the CUDA kernel failed ({type(exc).__name__}: {exc}); '
                     'building the CPU kernel only')
            # restore the compiler BuildExtension patched, then build CPU-only
            for k in ('compile', '_compile', 'spawn'):
                self.compiler.__dict__.pop(k, None)
            self.compiler.__dict__.update(saved)
            self.compiler.src_extensions = saved_src_ext
            self.extensions = [cpu_extension() if getattr(e, 'mmdet_solo_cuda', False) else e
                               for e in self.extensions]
            try:
                super().build_extensions()
            except Exception as exc:
                if required:
                    raise
                self._warn_no_ext(exc)

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as exc:
                if getattr(ext, 'mmdet_solo_cuda', False) or required:
                    raise
                self._warn_no_ext(exc)

        @staticmethod
        def _warn_no_ext(exc):
            _say(f'WARNING: could not build the C++ extension ({type(exc).__name__}: {exc}); '
                 'Matrix NMS and the mask kernels will use their PyTorch versions')

    return [ext], {'build_ext': BuildExtWithFallback.with_options(use_ninja=_has_ninja())}


def _has_ninja():
    try:
        from torch.utils.cpp_extension import is_ninja_available
        return is_ninja_available()
    except Exception:
        return False


ext_modules, cmdclass = make_extensions()

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
    package_data={'mmdet_solo.ops': ['csrc/*.h', 'csrc/*.cpp', 'csrc/*.cu']},
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt'),
                    'optional': read_requirements('optional.txt'),
                    'deploy': read_requirements('deploy.txt')},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
