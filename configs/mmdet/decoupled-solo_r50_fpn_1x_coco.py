# MMDetection 3.x `configs/solo/decoupled-solo_r50_fpn_1x_coco.py`: loads its published checkpoint (mmdet names are
# converted on load). Architecture, preprocessing and test_cfg equal mmdet's; see
# docs/MODEL_ZOO.md for the few post-processing details that differ from the original.
_base_ = '../solo/decoupled_solo_r50_fpn_8gpu_1x.py'
test_cfg = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
                sigma=2.0, max_per_img=100)
model = dict(bbox_head=dict(type='DecoupledSOLOHead'))
work_dir = './work_dirs/mmdet/decoupled-solo_r50_fpn_1x_coco'
