# SOLOv2 R50-FPN on Cityscapes (the original release's 18th config): the COCO 1x model with
# 8 classes, 5 images per GPU, 12 epochs (steps after 9 and 11), warmup from 1% of the lr.
_base_ = [
    '../_base_/models/solov2_r50_fpn.py',
    '../_base_/datasets/cityscapes_instance.py',
    '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]
# the original wrote num_classes=9 (8 thing classes + background); ours counts classes only
model = dict(bbox_head=dict(num_classes=8))
lr_config = dict(warmup_ratio=0.01)
work_dir = './work_dirs/solov2_r50_fpn_8gpu_1x_cityscapes'
