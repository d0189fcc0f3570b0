_base_ = './solo_r50_fpn_8gpu_3x.py'
model = dict(
    pretrained='torchvision://resnet101',
    backbone=dict(depth=101))
work_dir = './work_dirs/solo_r101_fpn_8gpu_3x'
