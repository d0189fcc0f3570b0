from .matrix_nms import (get_matrix_nms_backend, matrix_nms, matrix_nms_torch,
                         set_matrix_nms_backend)

__all__ = ['matrix_nms', 'matrix_nms_torch', 'set_matrix_nms_backend', 'get_matrix_nms_backend']
