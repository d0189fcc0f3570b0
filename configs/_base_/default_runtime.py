# Checkpointing, logging and distributed settings shared by every config.
checkpoint_config = dict(interval=1)
log_config = dict(
    interval=50,
    hooks=[
        dict(type='TextLoggerHook'),
        # dict(type='TensorboardLoggerHook')
    ])
dist_params = dict(backend='nccl')
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
# Linear lr scaling for another total batch size (tools/train.py --auto-scale-lr, or enable=True):
# optimizer.lr * (processes x imgs_per_gpu) / base_batch_size; the configs' lr is for 8 GPUs x 2.
auto_scale_lr = dict(enable=False, base_batch_size=16)
