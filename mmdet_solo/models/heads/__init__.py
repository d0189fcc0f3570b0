from .base_head import BaseGridHead
from .mask_feat_head import MaskFeatHead
from .solo_head import (DecoupledSOLOHead, DecoupledSOLOLightHead, DecoupledSOLOOutputs, SOLOHead,
                        SOLOOutputs)
from .solov2_head import SOLOv2Head, SOLOv2LightHead, SOLOv2Outputs

__all__ = ['BaseGridHead', 'SOLOHead', 'DecoupledSOLOHead', 'DecoupledSOLOLightHead',
           'MaskFeatHead', 'SOLOv2Head', 'SOLOv2LightHead', 'SOLOOutputs', 'DecoupledSOLOOutputs',
           'SOLOv2Outputs']
