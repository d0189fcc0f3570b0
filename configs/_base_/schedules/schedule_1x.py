# 12 epochs, lr 0.01 for 16 images per batch (8 GPUs x 2), steps after epochs 9 and 11.
# The warmup ratio 1/3 is the SOLO (v1) one; the SOLOv2 configs override it with 0.01.
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
lr_config = dict(
    policy='step',
    warmup='linear',
    warmup_iters=500,
    warmup_ratio=1.0 / 3,
    step=[9, 11])
total_epochs = 12
