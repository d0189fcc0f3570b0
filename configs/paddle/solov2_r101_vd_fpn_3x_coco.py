# PaddleDetection solov2_r101_vd_fpn_3x_coco (42.7 mask AP): ResNet-vd 101 (deep stem,
# avg-down shortcuts) with DCNv2 in res3-res5, DCNv2 in every head tower conv
# (dcn_v2_stages [0, 1, 2, 3]) and in every mask-feature conv (use_dcn_in_tower).
# Paddle's head and mask-feature DCNv2 convs carry a bias (conv_dcn.bias) although a GN
# follows; its plain convs and the backbone's DCNs have none: conv_bias='dcn' gives exactly that.
_base_ = '../solov2/solov2_r101_dcn_fpn_8gpu_3x.py'
model = dict(
    pretrained=None,
    backbone=dict(type='ResNetV1d'),
    bbox_head=dict(conv_bias='dcn'),
    mask_feat_head=dict(conv_bias='dcn'))
test_cfg = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
                sigma=2.0, max_per_img=100)
work_dir = './work_dirs/paddle/solov2_r101_vd_fpn_3x_coco'
