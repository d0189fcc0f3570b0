from .decoupled_solo_head import DecoupledSOLOHead
from .decoupled_solo_light_head import DecoupledSOLOLightHead
from .mask_feat_head import MaskFeatHead
from .solo_head import SOLOHead
from .solov2_head import SOLOv2Head, SOLOv2LightHead

__all__ = ['SOLOHead', 'DecoupledSOLOHead', 'DecoupledSOLOLightHead', 'MaskFeatHead',
           'SOLOv2Head', 'SOLOv2LightHead']
