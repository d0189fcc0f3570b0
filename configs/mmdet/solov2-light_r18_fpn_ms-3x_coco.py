# MMDetection 3.x `configs/solov2/solov2-light_r18_fpn_ms-3x_coco.py`: loads its published checkpoint (mmdet names are
# converted on load). Architecture, preprocessing and test_cfg equal mmdet's; see
# docs/MODEL_ZOO.md for the few post-processing details that differ from the original.
_base_ = './solov2-light_r50_fpn_ms-3x_coco.py'
model = dict(
    pretrained='torchvision://resnet18',
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512]))
work_dir = './work_dirs/mmdet/solov2-light_r18_fpn_ms-3x_coco'
