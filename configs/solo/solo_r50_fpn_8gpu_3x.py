_base_ = [
    '../_base_/models/solo_r50_fpn.py',
    '../_base_/datasets/coco_instance_ms.py',
    '../_base_/schedules/schedule_3x.py',
    '../_base_/default_runtime.py',
]
work_dir = './work_dirs/solo_r50_fpn_8gpu_3x'
