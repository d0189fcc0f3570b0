# Decoupled SOLO (light head), ResNet-18-FPN, trained from scratch on the synthetic shapes
# dataset on a CPU. Data, input size, optimizer, schedule, sigma and loss weights are those
# of solov2_light_r18_shapes.py (read its header); the head is Decoupled SOLO's: per grid
# cell, an X and a Y mask branch whose product is the instance mask. It is slower than the
# SOLOv2 recipe per iteration on a CPU (its mask towers run on the feature maps of every
# level, not on the S x S grid) and was not tuned for the 15-minute budget.
#   CONFIG=configs/shapes/decoupled_solo_light_r18_shapes.py WORK_DIR=work_dirs/dsolo make demo
_base_ = './solov2_light_r18_shapes.py'
model = dict(
    type='SOLO',
    bbox_head=dict(
        _delete_=True,
        type='DecoupledSOLOLightHead',
        num_classes=5,
        in_channels=64,
        stacked_convs=3,
        seg_feat_channels=128,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 20), (10, 40), (20, 80), (40, 160), (80, 320)),
        sigma=0.3,
        num_grids=[24, 20, 16, 12, 8],
        cate_down_pos=0,
        loss_ins=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0),
        loss_cate=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                       loss_weight=12.0)),
    mask_feat_head=None)
work_dir = './work_dirs/decoupled_solo_light_r18_shapes'
