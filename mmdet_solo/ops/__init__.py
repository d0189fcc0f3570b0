from .matrix_nms import matrix_nms

__all__ = ['matrix_nms']
