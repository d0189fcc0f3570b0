# SOLOv2 light (448), R50-FPN: a 2 x 256 head tower, 128 mask-feature channels and the
# scale ranges of 448-pixel inputs. The original keeps the full SOLOv2Head class.
_base_ = './solov2_r50_fpn.py'
model = dict(
    bbox_head=dict(
        stacked_convs=2,
        seg_feat_channels=256,
        scale_ranges=((1, 56), (28, 112), (56, 224), (112, 448), (224, 896)),
        ins_out_channels=128),
    mask_feat_head=dict(num_classes=128))
