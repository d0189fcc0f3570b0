_base_ = './solov2_r101_fpn_8gpu_3x.py'
# DCNv2 in backbone stages 2-4, in the head towers and in every mask-feature conv
model = dict(
    backbone=dict(
        dcn=dict(
            type='DCNv2',
            deformable_groups=1,
            fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)),
    bbox_head=dict(
        use_dcn_in_tower=True,
        type_dcn='DCNv2'),
    mask_feat_head=dict(conv_cfg=dict(type='DCNv2')))
work_dir = './work_dirs/solov2_r101_dcn_fpn_8gpu_3x'
