# PaddleDetection solov2_r101_vd_fpn_3x_coco (42.7 mask AP): ResNet-vd 101 (deep stem,
# avg-down shortcuts) with DCNv2 in res3-res5, DCNv2 in every head tower conv
# (dcn_v2_stages [0, 1, 2, 3]) and in every mask-feature conv (use_dcn_in_tower).
# NB: Paddle's head DCNs carry a bias (conv_dcn.bias) that our GN-followed DCNs do not have
# yet; those keys are reported when loading (see docs/MODEL_ZOO.md).
_base_ = '../solov2/solov2_r101_dcn_fpn_8gpu_3x.py'
model = dict(
    pretrained=None,
    backbone=dict(type='ResNetV1d'))
test_cfg = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
                sigma=2.0, max_per_img=100)
work_dir = './work_dirs/paddle/solov2_r101_vd_fpn_3x_coco'
