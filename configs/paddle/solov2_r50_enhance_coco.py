# PaddleDetection solov2_r50_enhance_coco (39.0 mask AP at 512): ResNet-vd 50 with DCNv2 in
# res3-res5, SOLOv2 head 3 x 256 with DCNv2 in the last tower conv (dcn_v2_stages [2]),
# DCNv2 in every mask-feature conv (use_dcn_in_tower, the 1x1 conv_pred included),
# E = 128, 128 mask-feature channels; tests at 852x512 but keeps the full-model scale ranges.
# Paddle's head and mask-feature DCNv2 convs carry a bias (conv_dcn.bias) although a GN
# follows; its plain convs and the backbone's DCNs have none: conv_bias='dcn' gives exactly that.
_base_ = '../solov2/solov2_light_512_dcn_r50_fpn_8gpu_3x.py'
model = dict(
    pretrained=None,
    backbone=dict(type='ResNetV1d',
                  dcn=dict(type='DCNv2', deformable_groups=1, fallback_on_stride=False)),
    bbox_head=dict(
        type_dcn='DCNv2',
        conv_bias='dcn',
        scale_ranges=((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048))),
    mask_feat_head=dict(conv_cfg=dict(type='DCNv2'), conv_bias='dcn'))
test_cfg = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
                sigma=2.0, max_per_img=100)
work_dir = './work_dirs/paddle/solov2_r50_enhance_coco'
