# MMDetection 3.x `configs/solov2/solov2-light_r50-dcn_fpn_ms-3x_coco.py`: loads its published checkpoint (mmdet names are
# converted on load). Architecture, preprocessing and test_cfg equal mmdet's; see
# docs/MODEL_ZOO.md for the few post-processing details that differ from the original.
# Unlike the original light-512-DCN (DCN v1), mmdet uses DCNv2 (conv_offset has 27 channels),
# 3 x 256 towers with DCNv2 in the last conv only, light-512 scale ranges, and it *tests at
# 768x448* (its test pipeline is inherited from the light-R50 config).
_base_ = './solov2-light_r50_fpn_ms-3x_coco.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deformable_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)),
    bbox_head=dict(
        type='SOLOv2LightHead',
        stacked_convs=3,
        use_dcn_in_tower=True,
        type_dcn='DCNv2',
        scale_ranges=((1, 64), (32, 128), (64, 256), (128, 512), (256, 2048))))
work_dir = './work_dirs/mmdet/solov2-light_r50-dcn_fpn_ms-3x_coco'
