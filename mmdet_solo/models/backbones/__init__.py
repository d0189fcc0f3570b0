from .resnet import BasicBlock, Bottleneck, ResNet, make_res_layer
from .resnext import ResNeXt
from .resnet_vd import ResNetV1d

__all__ = ['ResNet', 'ResNeXt', 'BasicBlock', 'Bottleneck', 'make_res_layer']
