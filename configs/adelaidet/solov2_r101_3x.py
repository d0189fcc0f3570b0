# AdelaiDet configs/SOLOv2/R101_3x.yaml (SOLOv2_R101_3x.pth, 39.0 mask AP)
_base_ = './solov2_r50_3x.py'
model = dict(backbone=dict(depth=101))
work_dir = './work_dirs/adelaidet/solov2_r101_3x'
