# 36 epochs: the 1x schedule with steps after epochs 27 and 33.
_base_ = './schedule_1x.py'
lr_config = dict(step=[27, 33])
total_epochs = 36
