_base_ = './decoupled_solo_light_r50_fpn_8gpu_3x.py'
# DCN (v1) in backbone stages 2-4 and in the head tower
model = dict(
    backbone=dict(
        dcn=dict(
            type='DCN',
            deformable_groups=1,
            fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)),
    bbox_head=dict(
        use_dcn_in_tower=True,
        type_dcn='DCN'))
work_dir = './work_dirs/decoupled_solo_light_dcn_r50_fpn_8gpu_3x'
