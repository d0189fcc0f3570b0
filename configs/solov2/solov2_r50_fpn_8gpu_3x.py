_base_ = [
    '../_base_/models/solov2_r50_fpn.py',
    '../_base_/datasets/coco_instance_ms.py',
    '../_base_/schedules/schedule_3x.py',
    '../_base_/default_runtime.py',
]
# the SOLOv2 release warms up from 1% of the lr (SOLO v1: 1/3)
lr_config = dict(warmup_ratio=0.01)
work_dir = './work_dirs/solov2_r50_fpn_8gpu_3x'
