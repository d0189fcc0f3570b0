# PaddleDetection solov2_r50_fpn_3x_coco (38.0 mask AP): multi-scale training, steps (24, 33)
_base_ = '../solov2/solov2_r50_fpn_8gpu_3x.py'
model = dict(pretrained=None)
test_cfg = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
                sigma=2.0, max_per_img=100)
work_dir = './work_dirs/paddle/solov2_r50_fpn_3x_coco'
