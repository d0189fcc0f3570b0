# Decoupled SOLO light, R50-FPN: 4-conv shared tower and the small-object scale ranges
# of the 512-pixel models; the head is written out in full (`_delete_=True`), as in the
# original, instead of merged into SOLOHead's.
_base_ = './solo_r50_fpn.py'
model = dict(
    bbox_head=dict(
        _delete_=True,
        type='DecoupledSOLOLightHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        seg_feat_channels=256,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 64), (32, 128), (64, 256), (128, 512), (256, 2048)),
        sigma=0.2,
        num_grids=[40, 36, 24, 16, 12],
        cate_down_pos=0,
        loss_ins=dict(
            type='DiceLoss',
            use_sigmoid=True,
            loss_weight=3.0),
        loss_cate=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0)))
