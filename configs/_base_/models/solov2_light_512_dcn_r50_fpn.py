# SOLOv2 light (512) with DCN, R50-FPN: DCN (v1) in backbone stages 2-4 and in the last
# conv of a 3 x 256 head tower (SOLOv2LightHead), 128 mask-feature channels and the
# scale ranges of 512-pixel inputs.
_base_ = './solov2_r50_fpn.py'
model = dict(
    backbone=dict(
        dcn=dict(
            type='DCN',
            deformable_groups=1,
            fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)),
    bbox_head=dict(
        type='SOLOv2LightHead',
        stacked_convs=3,
        use_dcn_in_tower=True,
        type_dcn='DCN',
        seg_feat_channels=256,
        scale_ranges=((1, 64), (32, 128), (64, 256), (128, 512), (256, 2048)),
        ins_out_channels=128),
    mask_feat_head=dict(num_classes=128))
