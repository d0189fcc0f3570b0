"""Data pipeline transforms (mmdet v1.0 names and semantics), registered in ``PIPELINES``; the
image helpers of :mod:`mmdet_solo.utils.image_ops` are re-exported here."""
from ...utils.image_ops import (imflip, imnormalize, impad, impad_to_multiple, imrescale, imresize,
                                normalize_scales, rescale_factor, scaled_size)
from .compose import Compose
from .formatting import (DEFAULT_META_KEYS, Collect, DefaultFormatBundle, ImageToTensor, ToTensor,
                         Transpose, to_tensor)
from .loading import LoadAnnotations, LoadImage, LoadImageFromFile, imread, segm_to_mask
from .test_time_aug import MultiScaleFlipAug
from .transforms import Normalize, Pad, RandomFlip, Resize, bbox_flip

__all__ = [
    'Compose', 'to_tensor', 'ToTensor', 'ImageToTensor', 'Transpose', 'DefaultFormatBundle',
    'Collect', 'DEFAULT_META_KEYS', 'LoadImageFromFile', 'LoadImage', 'LoadAnnotations', 'imread',
    'segm_to_mask', 'MultiScaleFlipAug', 'Resize', 'RandomFlip', 'Pad', 'Normalize', 'bbox_flip',
    'imflip', 'imnormalize', 'impad', 'impad_to_multiple', 'imrescale', 'imresize',
    'normalize_scales', 'rescale_factor', 'scaled_size',
]
