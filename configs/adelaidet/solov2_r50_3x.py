# AdelaiDet configs/SOLOv2/R50_3x.yaml (SOLOv2_R50_3x.pth, 37.6 mask AP): detectron2's
# caffe-style (MSRA) ResNet with frozen BN (FREEZE_AT=2: stem + res2), BGR input with mean
# [103.53, 116.28, 123.675] and std 1, test at short side 800 / long side <= 1333, pad 32.
# Checkpoint names (backbone.bottom_up.*, ins_head.*, mask_head.*) are converted on load.
# Images are resized with PIL bilinear (Resize backend='pillow'), as detectron2's
# ResizeShortestEdge; the new size can differ by 1 pixel on the short edge for a few very
# elongated images (docs/MODEL_ZOO.md).
_base_ = '../solov2/solov2_r50_fpn_8gpu_3x.py'
model = dict(
    pretrained=None,  # MSRA R-50.pkl is a non-tensor pickle; convert it before use
    backbone=dict(style='caffe', frozen_stages=1, norm_eval=True))
img_norm_cfg = dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize',
         img_scale=[(1333, 800), (1333, 768), (1333, 736), (1333, 704), (1333, 672),
                    (1333, 640)],
         multiscale_mode='value', keep_ratio=True, backend='pillow'),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(1333, 800), flip=False,
         transforms=[
             dict(type='Resize', keep_ratio=True, backend='pillow'),
             dict(type='RandomFlip'),
             dict(type='Normalize', **img_norm_cfg),
             dict(type='Pad', size_divisor=32),
             dict(type='ImageToTensor', keys=['img']),
             dict(type='Collect', keys=['img']),
         ])
]
data = dict(train=dict(pipeline=train_pipeline), val=dict(pipeline=test_pipeline),
            test=dict(pipeline=test_pipeline))
# AdelaiDet MODEL.SOLOV2 test settings (same values as the original)
test_cfg = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel='gaussian',
                sigma=2.0, max_per_img=100)
# AdelaiDet: warmup 1000 iters from 1%, steps (27, 33) epochs of 36
lr_config = dict(warmup_iters=1000, warmup_ratio=0.01)
work_dir = './work_dirs/adelaidet/solov2_r50_3x'
