# MMDetection 3.x `configs/solo/decoupled-solo-light_r50_fpn_3x_coco.py`: loads its published checkpoint (mmdet names are
# converted on load). Architecture, preprocessing and test_cfg equal mmdet's; see
# docs/MODEL_ZOO.md for the few post-processing details that differ from the original.
# test at 852x512 (mmdet: Resize(scale=(852, 512), keep_ratio=True))
_base_ = '../solo/decoupled_solo_light_r50_fpn_8gpu_3x.py'
test_cfg = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
                sigma=2.0, max_per_img=100)
model = dict(bbox_head=dict(type='DecoupledSOLOLightHead'))
work_dir = './work_dirs/mmdet/decoupled-solo-light_r50_fpn_3x_coco'
