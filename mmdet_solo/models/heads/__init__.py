from .mask_feat_head import MaskFeatHead
from .solov2_head import SOLOv2Head, SOLOv2LightHead

__all__ = ['MaskFeatHead', 'SOLOv2Head', 'SOLOv2LightHead']
