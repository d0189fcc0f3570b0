from .cpu_cache import cpu_allocation_cache, cpu_cache_stats, empty_cpu_cache, set_cpu_cache
from .mask_kernels import set_mask_kernels
from .matrix_nms import (get_matrix_nms_backend, matrix_nms, matrix_nms_torch,
                         set_matrix_nms_backend)

__all__ = ['matrix_nms', 'matrix_nms_torch', 'set_matrix_nms_backend', 'get_matrix_nms_backend',
           'set_mask_kernels', 'cpu_allocation_cache', 'cpu_cache_stats', 'empty_cpu_cache',
           'set_cpu_cache']
