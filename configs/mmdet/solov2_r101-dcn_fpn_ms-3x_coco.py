# MMDetection 3.x `configs/solov2/solov2_r101-dcn_fpn_ms-3x_coco.py`: loads its published checkpoint (mmdet names are
# converted on load). Architecture, preprocessing and test_cfg equal mmdet's; see
# docs/MODEL_ZOO.md for the few post-processing details that differ from the original.
# DCNv2 in backbone stages 2-4, every kernel/category tower conv and every mask-feature conv
_base_ = '../solov2/solov2_r101_dcn_fpn_8gpu_3x.py'
test_cfg = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
                sigma=2.0, max_per_img=100)
lr_config = dict(warmup_ratio=1.0 / 3)
work_dir = './work_dirs/mmdet/solov2_r101-dcn_fpn_ms-3x_coco'
