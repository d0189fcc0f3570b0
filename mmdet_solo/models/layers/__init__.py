from .conv_module import ConvModule, build_conv_layer, build_norm_layer, resolve_conv_bias
from .deform_conv import DeformConvPack, ModulatedDeformConvPack

__all__ = ['ConvModule', 'build_conv_layer', 'build_norm_layer', 'DeformConvPack',
           'ModulatedDeformConvPack', 'resolve_conv_bias']
