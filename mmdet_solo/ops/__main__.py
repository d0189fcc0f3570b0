"""``python -m mmdet_solo.ops``: which compiled operators this installation has and uses."""
import sys

import torch

from . import _ext_loader
from .matrix_nms import ENV_VAR, get_matrix_nms_backend


def report() -> str:
    lines = [f'torch {torch.__version__} (CUDA {torch.version.cuda}, '
             f'GPU visible: {torch.cuda.is_available()})',
             'matrix_nms backends:',
             '  torch (PyTorch reference, mmdet_solo.ops.matrix_nms_torch): available']
    if _ext_loader.load():
        lines.append(f'  ext   ({_ext_loader.EXT_MODULE}, {_ext_loader.module_file()}): loaded')
        for dev in ('cpu', 'cuda'):
            has = _ext_loader.has_kernel(dev)
            note = ''
            if dev == 'cuda' and has and not torch.cuda.is_available():
                note = ' (no GPU visible now)'
            elif dev == 'cuda' and not has:
                note = ' (built without CUDA; FORCE_CUDA=1 pip install --no-build-isolation -e .)'
            lines.append(f"        {dev} kernel: {'yes' if has else 'no'}{note}")
    else:
        lines.append(f'  ext   ({_ext_loader.EXT_MODULE}): NOT available: {_ext_loader.load_error()}')
    try:
        backend = get_matrix_nms_backend()
    except ValueError as exc:
        backend = f'invalid ({exc})'
    lines.append(f'selection: {backend} ({ENV_VAR}=torch|ext|auto; auto = ext where it has a '
                 'kernel for the device, else torch)')
    lines += mask_kernels_report()
    return '\n'.join(lines)


def mask_kernels_report() -> list:
    from . import mask_kernels as mk
    try:
        scan = mk.compiled_scan_available('cpu')
        variant = mk.paste_variant() if scan else None
    except ValueError as exc:
        return [f'mask kernels: invalid setting ({exc})']
    paste = (f'yes (variant {variant}: reproduces F.interpolate here)' if variant is not None
             else 'no (F.interpolate is used)')
    from . import cpu_cache as cc
    try:
        cache = 'yes' if cc.cpu_cache_available() else 'no'
    except ValueError as exc:
        cache = f'invalid setting ({exc})'
    return ['mask kernels (CPU post-processing; '
            f'{mk.ENV_VAR}=torch turns them off):',
            f"  mask_scan:   {'yes' if scan else 'no (PyTorch ops are used)'}",
            f'  paste_masks: {paste}',
            f'inference allocation cache ({cc.ENV_VAR}=0 turns it off): {cache}']


def main() -> int:
    print(report())
    return 0


if __name__ == '__main__':
    sys.exit(main())
