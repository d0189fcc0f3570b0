# PaddleDetection configs/solov2/solov2_r50_fpn_1x_coco.yml (35.5 mask AP): the original
# architecture (pytorch-style R50, SOLOv2 head 4 x 512, E = 256), RGB ImageNet normalisation,
# test at 800/1333, pad 32, MaskMatrixNMS(update 0.05, pre 500, post 100, gaussian sigma 2).
# .pdparams names (backbone.res*, neck.fpn_*, solov2_head.*, mask_head.*) are converted on load.
_base_ = '../solov2/solov2_r50_fpn_8gpu_1x.py'
model = dict(pretrained=None)
test_cfg = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
                sigma=2.0, max_per_img=100)
work_dir = './work_dirs/paddle/solov2_r50_fpn_1x_coco'
