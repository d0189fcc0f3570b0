_base_ = './solov2_light_448_r50_fpn_8gpu_3x.py'
# ResNet-34: basic blocks, so C2-C5 have 64-512 channels
model = dict(
    pretrained='torchvision://resnet34',
    backbone=dict(depth=34),
    neck=dict(in_channels=[64, 128, 256, 512]))
work_dir = './work_dirs/solov2_light_448_r34_fpn_8gpu_3x'
