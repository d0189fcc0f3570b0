# The shapes demo model (configs/shapes/solov2_light_r18_shapes.py, `make demo`) tested with
# test-time augmentation: two scales (the training scale 192x160 and 224x187) and their
# horizontal flips, merged as docs/GETTING_STARTED.md ("Test-time augmentation") describes.
# On the shapes val set: mask AP 0.361 -> 0.409 (batch 1; 0.360 -> 0.404 at batch 8), ~3.6x the
# test time; flip alone +2.0 AP at ~1.4x (BENCHMARKS.md,
# "Test-time augmentation"). Use it with the demo's checkpoint:
#   python tools/test_ins.py configs/shapes/solov2_light_r18_shapes_tta.py \
#       work_dirs/demo/latest.pth --eval segm
_base_ = './solov2_light_r18_shapes.py'
img_norm_cfg = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiScaleFlipAug',
        img_scale=[(192, 160), (224, 187)],
        flip=True,
        transforms=[
            dict(type='Resize', keep_ratio=True),
            dict(type='RandomFlip'),
            dict(type='Normalize', **img_norm_cfg),
            dict(type='Pad', size_divisor=32),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img']),
        ])
]
data = dict(val=dict(pipeline=test_pipeline), test=dict(pipeline=test_pipeline))
work_dir = './work_dirs/solov2_light_r18_shapes_tta'
