"""mmdet_solo: SOLO-family box-free instance segmentation in plain PyTorch."""
__version__ = '0.1.0'
