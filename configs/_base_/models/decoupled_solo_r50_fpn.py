# Decoupled SOLO, R50-FPN: the SOLO model with the decoupled (X/Y) mask head.
_base_ = './solo_r50_fpn.py'
model = dict(bbox_head=dict(type='DecoupledSOLOHead'))
