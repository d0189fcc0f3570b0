# SOLOv2-light, ResNet-18-FPN, trained from scratch on the synthetic shapes dataset
# (tools/make_shapes.py) on a CPU: the recipe `make demo` runs.
#
# What differs from configs/solov2/solov2_light_448_r18_fpn_8gpu_3x.py, and why:
# - no ImageNet weights (pretrained=None), so every BatchNorm learns (frozen_stages=-1,
#   norm_eval=False);
# - inputs of at most 256x192 (the shapes images are 256-320 px), so the scale ranges are
#   the 448 model's scaled by 192/448 (every level gets objects: they are 19-125 px at this
#   size), and coarser grids;
# - a slimmer neck and head (FPN 64 channels, tower 2 x 128, mask features E = 64): the
#   FPN's stride-4 level alone costs a quarter of the backbone at 128 channels; on a CPU
#   speed matters more than the last bit of capacity;
# - AdamW with a high learning rate, a short linear warm-up and gradient clipping: from
#   scratch it converges several times faster than SGD over a budget of minutes;
# - the masks learn fast, the categories slowly (after a few minutes the masks are right and
#   the classes mostly wrong): twice the category loss weight, to make the backbone learn
#   class features, and a larger centre region (sigma 0.3: more positive cells per object);
# - 4 images per batch (more optimizer steps in the same time; enough for BatchNorm),
#   loaded in the main process (workers compete with the compute on 2 cores).
_base_ = [
    '../_base_/models/solov2_light_448_r50_fpn.py',
    '../_base_/default_runtime.py',
]
classes = ('circle', 'triangle', 'square', 'star', 'ring')
model = dict(
    pretrained=None,
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    bbox_head=dict(
        num_classes=len(classes),
        in_channels=64,
        stacked_convs=2,
        seg_feat_channels=128,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192), (96, 384)),
        num_grids=[24, 20, 16, 12, 8],
        sigma=0.3,
        ins_out_channels=64,
        loss_cate=dict(loss_weight=2.0)),
    mask_feat_head=dict(in_channels=64, out_channels=64, num_classes=64,
                        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True)))
test_cfg = dict(nms_pre=200, score_thr=0.1, mask_thr=0.5, update_thr=0.05, max_per_img=30)

# ----------------------------------------------------------------------------- data
dataset_type = 'CocoDataset'
data_root = 'data/shapes/'
img_norm_cfg = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
img_scale = (256, 192)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', img_scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiScaleFlipAug',
        img_scale=img_scale,
        flip=False,
        transforms=[
            dict(type='Resize', keep_ratio=True),
            dict(type='RandomFlip'),
            dict(type='Normalize', **img_norm_cfg),
            dict(type='Pad', size_divisor=32),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img']),
        ])
]
data = dict(
    imgs_per_gpu=4,
    workers_per_gpu=0,
    train=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'annotations/instances_train.json',
        img_prefix=data_root + 'train/',
        pipeline=train_pipeline),
    val=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'annotations/instances_val.json',
        img_prefix=data_root + 'val/',
        pipeline=test_pipeline),
    test=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'annotations/instances_val.json',
        img_prefix=data_root + 'val/',
        pipeline=test_pipeline))

# ------------------------------------------------------------------------- schedule
optimizer = dict(type='AdamW', lr=2e-3, weight_decay=0.05)
optimizer_config = dict(grad_clip=dict(max_norm=10, norm_type=2))
# 1000 training images / 4 = 250 iterations per epoch, 1500 in all (~14 min on 2 idle
# cores); the last epoch at lr/10
lr_config = dict(policy='step', warmup='linear', warmup_iters=100, warmup_ratio=0.01, step=[5])
total_epochs = 6
checkpoint_config = dict(interval=1, max_keep_ckpts=1)
log_config = dict(interval=10, hooks=[dict(type='TextLoggerHook')])
evaluation = dict(interval=100, metric='segm')  # evaluation is run after training (make demo)
dist_params = dict(backend='gloo')
work_dir = './work_dirs/solov2_light_r18_shapes'
