"""AdelaiDet / detectron2 YAML configs (``configs/SOLOv2/R50_3x.yaml``), translated at load.

``Config.fromfile('configs/SOLOv2/R50_3x.yaml')`` (and so every tool) reads AdelaiDet's
SOLOv2 configs: the file and its ``_BASE_`` chain are merged over the detectron2 + AdelaiDet
defaults of the keys below (:data:`DEFAULTS`, their values as in detectron2's
``config/defaults.py`` and AdelaiDet's ``adet/config/defaults.py``), ``KEY VALUE`` overrides
(``--opts``) are merged the way detectron2's ``merge_from_list`` does (values parsed as Python
literals, checked against the default's type), and the result becomes our config
(:func:`translate`). A key that is not in :data:`DEFAULTS` is an error with a did-you-mean; a
key we know but cannot honour (``MODEL.SOLOV2.NMS_TYPE: "mask"``, deformable convolutions,
...) is an error naming the value we support.

What the translation cannot carry over (also in tools/README.md):

* the schedule is counted in iterations (``SOLVER.STEPS`` become ``lr_config.step`` with
  ``by_epoch=False``: the same lr at every iteration of the same total batch), but our trainer
  runs whole epochs: ``total_epochs`` is the number of epochs that covers ``SOLVER.MAX_ITER``
  iterations of ``SOLVER.IMS_PER_BATCH`` images (:data:`TRAIN_IMAGES` for the COCO sets);
* ``SOLVER.WEIGHT_DECAY_NORM`` (detectron2 default 0.0: no decay on the heads' GroupNorm) is
  not supported by our optimizer builder: every parameter decays with ``WEIGHT_DECAY``;
* ``SOLVER.CHECKPOINT_PERIOD`` (iterations): we checkpoint once per epoch;
* ``MODEL.WEIGHTS`` does not change the config: tools/train_net.py and demo/demo.py use it
  (a ``.pth`` checkpoint; ImageNet ``.pkl`` files are pickles and are not loaded).
"""
from __future__ import annotations

import ast
import copy
import math
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .config import ConfigError
from .registry import did_you_mean

BASE_KEY = '_BASE_'
YAML_EXTENSIONS = ('.yaml', '.yml')

_RES = ['res2', 'res3', 'res4', 'res5']
# detectron2 defaults (config/defaults.py) + AdelaiDet's (adet/config/defaults.py), for the
# keys a SOLOv2 config uses or may set
DEFAULTS: Dict[str, Any] = {
    'MODEL': {
        'META_ARCHITECTURE': 'GeneralizedRCNN', 'MASK_ON': False, 'DEVICE': 'cuda',
        'WEIGHTS': '', 'PIXEL_MEAN': [103.530, 116.280, 123.675], 'PIXEL_STD': [1.0, 1.0, 1.0],
        'MOBILENET': False,
        'BACKBONE': {'NAME': 'build_resnet_backbone', 'FREEZE_AT': 2, 'ANTI_ALIAS': False},
        'RESNETS': {
            'DEPTH': 50, 'OUT_FEATURES': ['res4'], 'NUM_GROUPS': 1, 'NORM': 'FrozenBN',
            'WIDTH_PER_GROUP': 64, 'STRIDE_IN_1X1': True, 'RES5_DILATION': 1,
            'RES2_OUT_CHANNELS': 256, 'STEM_OUT_CHANNELS': 64,
            'DEFORM_ON_PER_STAGE': [False, False, False, False], 'DEFORM_MODULATED': False,
            'DEFORM_NUM_GROUPS': 1, 'DEFORM_INTERVAL': 1},
        'FPN': {'IN_FEATURES': [], 'OUT_CHANNELS': 256, 'NORM': '', 'FUSE_TYPE': 'sum'},
        'SOLOV2': {
            'INSTANCE_IN_FEATURES': ['p2', 'p3', 'p4', 'p5', 'p6'],
            'FPN_INSTANCE_STRIDES': [8, 8, 16, 32, 32],
            'FPN_SCALE_RANGES': ((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048)),
            'SIGMA': 0.2, 'INSTANCE_IN_CHANNELS': 256, 'INSTANCE_CHANNELS': 512,
            'NUM_INSTANCE_CONVS': 4, 'USE_DCN_IN_INSTANCE': False, 'TYPE_DCN': 'DCN',
            'NUM_GRIDS': [40, 36, 24, 16, 12], 'NUM_CLASSES': 80, 'NUM_KERNELS': 256,
            'NORM': 'GN', 'USE_COORD_CONV': True, 'PRIOR_PROB': 0.01,
            'MASK_IN_FEATURES': ['p2', 'p3', 'p4', 'p5'], 'MASK_IN_CHANNELS': 256,
            'MASK_CHANNELS': 128, 'NUM_MASKS': 256,
            'NMS_PRE': 500, 'SCORE_THR': 0.1, 'UPDATE_THR': 0.05, 'MASK_THR': 0.5,
            'MAX_PER_IMG': 100, 'NMS_TYPE': 'matrix', 'NMS_KERNEL': 'gaussian', 'NMS_SIGMA': 2,
            'LOSS': {'FOCAL_USE_SIGMOID': True, 'FOCAL_ALPHA': 0.25, 'FOCAL_GAMMA': 2.0,
                     'FOCAL_WEIGHT': 1.0, 'DICE_WEIGHT': 3.0}},
    },
    'INPUT': {
        'MIN_SIZE_TRAIN': (800,), 'MIN_SIZE_TRAIN_SAMPLING': 'choice', 'MAX_SIZE_TRAIN': 1333,
        'MIN_SIZE_TEST': 800, 'MAX_SIZE_TEST': 1333, 'RANDOM_FLIP': 'horizontal',
        'FORMAT': 'BGR', 'MASK_FORMAT': 'polygon', 'HFLIP_TRAIN': True, 'IS_ROTATE': False,
        'CROP': {'ENABLED': False, 'TYPE': 'relative_range', 'SIZE': [0.9, 0.9],
                 'CROP_INSTANCE': True},
    },
    'DATASETS': {'TRAIN': (), 'TEST': ()},
    'DATALOADER': {'NUM_WORKERS': 4, 'ASPECT_RATIO_GROUPING': True,
                   'SAMPLER_TRAIN': 'TrainingSampler', 'REPEAT_THRESHOLD': 0.0,
                   'FILTER_EMPTY_ANNOTATIONS': True},
    'SOLVER': {
        'LR_SCHEDULER_NAME': 'WarmupMultiStepLR', 'MAX_ITER': 40000, 'BASE_LR': 0.001,
        'MOMENTUM': 0.9, 'NESTEROV': False, 'WEIGHT_DECAY': 0.0001, 'WEIGHT_DECAY_NORM': 0.0,
        'GAMMA': 0.1, 'STEPS': (30000,), 'WARMUP_FACTOR': 1.0 / 1000, 'WARMUP_ITERS': 1000,
        'WARMUP_METHOD': 'linear', 'CHECKPOINT_PERIOD': 5000, 'IMS_PER_BATCH': 16,
        'REFERENCE_WORLD_SIZE': 0, 'BIAS_LR_FACTOR': 1.0, 'WEIGHT_DECAY_BIAS': None,
        'CLIP_GRADIENTS': {'ENABLED': False, 'CLIP_TYPE': 'value', 'CLIP_VALUE': 1.0,
                           'NORM_TYPE': 2.0},
        'AMP': {'ENABLED': False},
    },
    'TEST': {'EVAL_PERIOD': 0, 'DETECTIONS_PER_IMAGE': 100, 'AUG': {'ENABLED': False},
             'PRECISE_BN': {'ENABLED': False, 'NUM_ITER': 200}},
    'OUTPUT_DIR': './output', 'SEED': -1, 'CUDNN_BENCHMARK': False, 'VIS_PERIOD': 0,
    'VERSION': 2,
}

# detectron2's builtin COCO sets: (image folder, annotation file) under the dataset root
# ($DETECTRON2_DATASETS, else our data/ folder, which holds coco/ as detectron2's datasets/)
BUILTIN_DATASETS = {
    'coco_2017_train': ('coco/train2017', 'coco/annotations/instances_train2017.json'),
    'coco_2017_val': ('coco/val2017', 'coco/annotations/instances_val2017.json'),
    'coco_2017_test-dev': ('coco/test2017', 'coco/annotations/image_info_test-dev2017.json'),
    'coco_2014_train': ('coco/train2014', 'coco/annotations/instances_train2014.json'),
    'coco_2014_val': ('coco/val2014', 'coco/annotations/instances_val2014.json'),
}
# training images left after dropping those without annotations (detectron2's log for
# coco_2017_train): turns SOLVER.MAX_ITER into epochs
TRAIN_IMAGES = {'coco_2017_train': 117266, 'coco_2014_train': 82081}
# datasets registered from Python (register_coco_instances), name -> (image root, json)
REGISTERED: Dict[str, Tuple[str, str]] = {}


class YamlConfigError(ConfigError):
    """A YAML config that cannot be read or translated (names the file/key/value)."""


def register_coco_instances(name: str, json_file: str, image_root: str) -> None:
    """Make ``name`` usable in ``DATASETS.TRAIN/TEST`` (as detectron2's function of that name)."""
    REGISTERED[name] = (image_root, json_file)


def _error(msg: str) -> YamlConfigError:
    return YamlConfigError(msg)


# ------------------------------------------------------------------------ loading, merging
def _decode(value: Any) -> Any:
    """A YAML / command-line value as detectron2 decodes it: strings that are Python literals
    (``"(640, 672)"``, ``"0.02"``) become those values, other strings stay strings."""
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _coerce(value: Any, default: Any, key: str, where: str) -> Any:
    """``value`` in the type of ``default`` (tuple <-> list, int -> float), else an error."""
    if default is None or value is None or type(value) is type(default):
        return value
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return type(default)(value)
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(default, float):
        return float(value)
    raise _error(f'{where}: {key}={value!r} is a {type(value).__name__}, expected a '
                 f'{type(default).__name__} like the default {default!r}')


def _merge(cfg: Dict[str, Any], new: Mapping[str, Any], where: str, prefix: str = '') -> None:
    for k, v in new.items():
        key = f'{prefix}{k}'
        if k not in cfg:
            raise _error(f'{where}: unknown key {key!r}{did_you_mean(k, cfg)}; '
                         f"known keys here: {', '.join(sorted(cfg))}")
        if isinstance(cfg[k], dict):
            if not isinstance(v, dict):
                raise _error(f'{where}: {key} is a section ({", ".join(cfg[k])}), got {v!r}')
            _merge(cfg[k], v, where, key + '.')
        else:
            cfg[k] = _coerce(_decode(v), cfg[k], key, where)


def _read_yaml(path: str, chain: Tuple[str, ...] = ()) -> List[Tuple[str, Dict[str, Any]]]:
    """(file, its dict) of ``path`` and its ``_BASE_`` chain, bases first."""
    import yaml
    if path in chain:
        raise _error(f"_BASE_ cycle: {' -> '.join(chain + (path,))}")
    if not osp.isfile(path):
        by = f' (the _BASE_ of {chain[-1]})' if chain else ''
        raise _error(f'config file not found: {path}{by}')
    with open(path, encoding='utf-8') as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise _error(f'{path}: not valid YAML: {e}') from None
    if not isinstance(data, dict):
        raise _error(f'{path}: expected a mapping of config keys, got {type(data).__name__}')
    base = data.pop(BASE_KEY, None)
    if base is None:
        return [(path, data)]
    if not isinstance(base, str):
        raise _error(f'{path}: _BASE_ must be a path, got {base!r}')
    base_path = osp.normpath(osp.join(osp.dirname(path), osp.expanduser(base)))
    return _read_yaml(base_path, chain + (path,)) + [(path, data)]


def load_d2_cfg(path: str, opts: Sequence[str] = ()) -> Dict[str, Any]:
    """The detectron2-style config of ``path`` (its ``_BASE_`` chain merged over
    :data:`DEFAULTS`), with ``opts`` (``['KEY', 'VALUE', ...]``) merged last."""
    return _load(osp.abspath(osp.expanduser(path)), opts)[0]


def _load(path: str, opts: Sequence[str]) -> Tuple[Dict[str, Any], List[str]]:
    """(:func:`load_d2_cfg` of absolute ``path``, the files of its ``_BASE_`` chain)."""
    cfg = copy.deepcopy(DEFAULTS)
    chain = _read_yaml(path)
    for file, data in chain:
        _merge(cfg, data, file)
    merge_opts(cfg, opts)
    return cfg, [file for file, _ in chain]


def merge_opts(cfg: Dict[str, Any], opts: Sequence[str]) -> None:
    """detectron2's ``merge_from_list``: ``KEY VALUE`` pairs, keys dotted (``SOLVER.BASE_LR``)."""
    if len(opts) % 2:
        raise _error(f'overrides come in KEY VALUE pairs; got an odd number: {list(opts)}')
    for key, value in zip(opts[0::2], opts[1::2]):
        node: Dict[str, Any] = cfg
        parts = key.split('.')
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if not isinstance(child, dict):
                where = '.'.join(parts[:i]) or 'the config'
                raise _error(f"override {key!r}: {where} has no section {part!r}"
                             f'{did_you_mean(part, [k for k, v in node.items() if isinstance(v, dict)])}')
            node = child
        _merge(node, {parts[-1]: value}, 'override', '.'.join(parts[:-1]) + '.'
               if len(parts) > 1 else '')


# --------------------------------------------------------------------------- translation
def _only(d2: Dict[str, Any], key: str, allowed: Sequence[Any]) -> None:
    node: Any = d2
    for part in key.split('.'):
        node = node[part]
    if node not in allowed:
        raise _error(f"{key}={node!r} is not supported here (supported: "
                     f"{', '.join(repr(a) for a in allowed)})")


def _dataset_files(name: str) -> Tuple[str, str]:
    """(image folder, annotation file) of a dataset name of DATASETS.TRAIN/TEST."""
    if name in REGISTERED:
        return REGISTERED[name]
    if name not in BUILTIN_DATASETS:
        raise _error(f'DATASETS: unknown dataset {name!r}'
                     f'{did_you_mean(name, list(BUILTIN_DATASETS) + list(REGISTERED))}; '
                     f"known: {', '.join(list(BUILTIN_DATASETS) + list(REGISTERED))} "
                     '(register others with mmdet_solo.config_yaml.register_coco_instances)')
    root = os.environ.get('DETECTRON2_DATASETS', 'data')
    img, ann = BUILTIN_DATASETS[name]
    return osp.join(root, img) + '/', osp.join(root, ann)


def _one_dataset(names: Sequence[str], key: str) -> Optional[str]:
    if len(names) > 1:
        raise _error(f'{key}={tuple(names)!r}: one dataset is supported here')
    return names[0] if names else None


def _model(d2: Dict[str, Any]) -> Dict[str, Any]:
    m, r, s = d2['MODEL'], d2['MODEL']['RESNETS'], d2['MODEL']['SOLOV2']
    _only(d2, 'MODEL.META_ARCHITECTURE', ['SOLOv2'])
    _only(d2, 'MODEL.BACKBONE.NAME', ['build_resnet_fpn_backbone'])
    for key, value in [('MODEL.MOBILENET', False), ('MODEL.BACKBONE.ANTI_ALIAS', False),
                       ('MODEL.RESNETS.OUT_FEATURES', _RES), ('MODEL.FPN.IN_FEATURES', _RES),
                       ('MODEL.RESNETS.NUM_GROUPS', 1), ('MODEL.RESNETS.WIDTH_PER_GROUP', 64),
                       ('MODEL.RESNETS.RES5_DILATION', 1), ('MODEL.RESNETS.STEM_OUT_CHANNELS', 64),
                       ('MODEL.RESNETS.DEFORM_ON_PER_STAGE', [False] * 4),
                       ('MODEL.FPN.NORM', ''), ('MODEL.FPN.FUSE_TYPE', 'sum'),
                       ('MODEL.SOLOV2.INSTANCE_IN_FEATURES', ['p2', 'p3', 'p4', 'p5', 'p6']),
                       ('MODEL.SOLOV2.USE_DCN_IN_INSTANCE', False), ('MODEL.SOLOV2.NORM', 'GN'),
                       ('MODEL.SOLOV2.USE_COORD_CONV', True), ('MODEL.SOLOV2.PRIOR_PROB', 0.01),
                       ('MODEL.SOLOV2.NMS_TYPE', 'matrix'),
                       ('MODEL.SOLOV2.LOSS.FOCAL_USE_SIGMOID', True)]:
        _only(d2, key, [value])
    _only(d2, 'MODEL.RESNETS.DEPTH', [18, 34, 50, 101, 152])
    _only(d2, 'MODEL.RESNETS.NORM', ['FrozenBN', 'BN'])
    res2 = 64 if r['DEPTH'] in (18, 34) else 256
    if r['RES2_OUT_CHANNELS'] != res2:
        raise _error(f"MODEL.RESNETS.RES2_OUT_CHANNELS={r['RES2_OUT_CHANNELS']}: ResNet-"
                     f"{r['DEPTH']} has {res2} (detectron2 requires it too)")
    mask_in = s['MASK_IN_FEATURES']
    levels = ['p2', 'p3', 'p4', 'p5', 'p6']
    if list(mask_in) != levels[levels.index(mask_in[0]):levels.index(mask_in[0]) + len(mask_in)]:
        raise _error(f'MODEL.SOLOV2.MASK_IN_FEATURES={mask_in!r}: expected consecutive levels '
                     'of p2..p6')
    if s['NUM_KERNELS'] != s['NUM_MASKS']:
        raise _error(f"MODEL.SOLOV2.NUM_KERNELS={s['NUM_KERNELS']} must equal NUM_MASKS="
                     f"{s['NUM_MASKS']} (one kernel weight per mask-feature channel)")
    freeze = m['BACKBONE']['FREEZE_AT']
    backbone = dict(type='ResNet', depth=r['DEPTH'], num_stages=4, out_indices=(0, 1, 2, 3),
                    frozen_stages=freeze - 1 if freeze > 0 else -1,
                    style='caffe' if r['STRIDE_IN_1X1'] else 'pytorch',
                    norm_eval=r['NORM'] == 'FrozenBN')
    widths = [res2 * 2 ** i for i in range(4)]
    loss = s['LOSS']
    return dict(
        type='SOLOv2', pretrained=None, backbone=backbone,
        neck=dict(type='FPN', in_channels=widths, out_channels=m['FPN']['OUT_CHANNELS'],
                  start_level=0, num_outs=5),
        bbox_head=dict(
            type='SOLOv2Head', num_classes=s['NUM_CLASSES'], in_channels=s['INSTANCE_IN_CHANNELS'],
            stacked_convs=s['NUM_INSTANCE_CONVS'], seg_feat_channels=s['INSTANCE_CHANNELS'],
            strides=list(s['FPN_INSTANCE_STRIDES']),
            scale_ranges=tuple(tuple(x) for x in s['FPN_SCALE_RANGES']), sigma=s['SIGMA'],
            num_grids=list(s['NUM_GRIDS']), ins_out_channels=s['NUM_KERNELS'],
            loss_ins=dict(type='DiceLoss', use_sigmoid=True, loss_weight=loss['DICE_WEIGHT']),
            loss_cate=dict(type='FocalLoss', use_sigmoid=True, gamma=loss['FOCAL_GAMMA'],
                           alpha=loss['FOCAL_ALPHA'], loss_weight=loss['FOCAL_WEIGHT'])),
        mask_feat_head=dict(
            type='MaskFeatHead', in_channels=s['MASK_IN_CHANNELS'], out_channels=s['MASK_CHANNELS'],
            start_level=levels.index(mask_in[0]), end_level=levels.index(mask_in[-1]),
            num_classes=s['NUM_MASKS'], norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)))


def _pipelines(d2: Dict[str, Any]) -> Tuple[list, list]:
    inp = d2['INPUT']
    _only(d2, 'INPUT.FORMAT', ['BGR', 'RGB'])
    _only(d2, 'INPUT.MIN_SIZE_TRAIN_SAMPLING', ['choice', 'range'])
    _only(d2, 'INPUT.RANDOM_FLIP', ['horizontal', 'none'])
    for key in ('INPUT.CROP.ENABLED', 'INPUT.IS_ROTATE', 'TEST.AUG.ENABLED'):
        _only(d2, key, [False])
    norm = dict(type='Normalize', mean=list(d2['MODEL']['PIXEL_MEAN']),
                std=list(d2['MODEL']['PIXEL_STD']), to_rgb=inp['FORMAT'] == 'RGB')
    sizes, long = inp['MIN_SIZE_TRAIN'], inp['MAX_SIZE_TRAIN']
    sizes = (sizes,) if isinstance(sizes, int) else tuple(sizes)
    if inp['MIN_SIZE_TRAIN_SAMPLING'] == 'choice':
        resize = dict(type='Resize', img_scale=[(long, s) for s in sorted(sizes, reverse=True)],
                      multiscale_mode='value', keep_ratio=True, backend='pillow')
    else:
        if len(sizes) != 2:
            raise _error(f'INPUT.MIN_SIZE_TRAIN={sizes!r}: the range sampling takes (min, max)')
        resize = dict(type='Resize', img_scale=[(long, max(sizes)), (long, min(sizes))],
                      multiscale_mode='range', keep_ratio=True, backend='pillow')
    flip = 0.5 if inp['HFLIP_TRAIN'] and inp['RANDOM_FLIP'] == 'horizontal' else 0.0
    train = [dict(type='LoadImageFromFile'),
             dict(type='LoadAnnotations', with_bbox=True, with_mask=True), resize,
             dict(type='RandomFlip', flip_ratio=flip), dict(norm), dict(type='Pad', size_divisor=32),
             dict(type='DefaultFormatBundle'),
             dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks'])]
    test = [dict(type='LoadImageFromFile'),
            dict(type='MultiScaleFlipAug', img_scale=(inp['MAX_SIZE_TEST'], inp['MIN_SIZE_TEST']),
                 flip=False,
                 transforms=[dict(type='Resize', keep_ratio=True, backend='pillow'),
                             dict(type='RandomFlip'), dict(norm),
                             dict(type='Pad', size_divisor=32),
                             dict(type='ImageToTensor', keys=['img']),
                             dict(type='Collect', keys=['img'])])]
    return train, test


def _data(d2: Dict[str, Any], train_pipeline: list, test_pipeline: list,
          num_gpus: Optional[int]) -> Dict[str, Any]:
    ims = d2['SOLVER']['IMS_PER_BATCH']
    if num_gpus is None:  # AdelaiDet's 8 processes where the batch splits so, else one
        num_gpus = 8 if ims % 8 == 0 else 1
    if ims % num_gpus:
        raise _error(f'SOLVER.IMS_PER_BATCH={ims} (the total batch) must be divisible by the '
                     f'number of processes ({num_gpus})')
    data: Dict[str, Any] = dict(imgs_per_gpu=ims // num_gpus,
                                workers_per_gpu=d2['DATALOADER']['NUM_WORKERS'])
    train = _one_dataset(d2['DATASETS']['TRAIN'], 'DATASETS.TRAIN')
    test = _one_dataset(d2['DATASETS']['TEST'], 'DATASETS.TEST')
    if train is not None:
        img, ann = _dataset_files(train)
        data['train'] = dict(type='CocoDataset', ann_file=ann, img_prefix=img,
                             pipeline=train_pipeline)
        if not d2['DATALOADER']['FILTER_EMPTY_ANNOTATIONS']:
            data['train']['filter_empty_gt'] = False
    if test is not None:
        img, ann = _dataset_files(test)
        for split in ('val', 'test'):
            data[split] = dict(type='CocoDataset', ann_file=ann, img_prefix=img,
                               pipeline=copy.deepcopy(test_pipeline))
    return data


def _schedule(d2: Dict[str, Any]) -> Dict[str, Any]:
    sol = d2['SOLVER']
    _only(d2, 'SOLVER.LR_SCHEDULER_NAME', ['WarmupMultiStepLR'])
    _only(d2, 'SOLVER.WARMUP_METHOD', ['linear', 'constant'])
    _only(d2, 'SOLVER.BIAS_LR_FACTOR', [1.0])
    _only(d2, 'SOLVER.REFERENCE_WORLD_SIZE', [0])
    optimizer = dict(type='SGD', lr=sol['BASE_LR'], momentum=sol['MOMENTUM'],
                     weight_decay=sol['WEIGHT_DECAY'])
    if sol['NESTEROV']:
        optimizer['nesterov'] = True
    clip = sol['CLIP_GRADIENTS']
    grad_clip = None
    if clip['ENABLED']:
        if clip['CLIP_TYPE'] != 'full_model':
            raise _error(f"SOLVER.CLIP_GRADIENTS.CLIP_TYPE={clip['CLIP_TYPE']!r} is not "
                         "supported (supported: 'full_model', the norm of all gradients)")
        grad_clip = dict(max_norm=clip['CLIP_VALUE'], norm_type=clip['NORM_TYPE'])
    lr_config = dict(policy='step', step=list(sol['STEPS']), gamma=sol['GAMMA'], by_epoch=False)
    if sol['WARMUP_ITERS'] > 0:
        lr_config.update(warmup=sol['WARMUP_METHOD'], warmup_iters=sol['WARMUP_ITERS'],
                         warmup_ratio=sol['WARMUP_FACTOR'])
    return dict(optimizer=optimizer, optimizer_config=dict(grad_clip=grad_clip),
                lr_config=lr_config, total_epochs=_epochs(d2))


def _epochs(d2: Dict[str, Any]) -> int:
    """Whole epochs covering SOLVER.MAX_ITER iterations of SOLVER.IMS_PER_BATCH images."""
    sol, names = d2['SOLVER'], d2['DATASETS']['TRAIN']
    name = names[0] if names else None
    if name in TRAIN_IMAGES:
        return max(1, math.ceil(sol['MAX_ITER'] / math.ceil(TRAIN_IMAGES[name] / sol['IMS_PER_BATCH'])))
    if name is not None and name in REGISTERED:  # a small set: count its annotated images
        import json
        with open(REGISTERED[name][1]) as f:
            anns = json.load(f).get('annotations', [])
        n = max(1, len({a['image_id'] for a in anns}))
        return max(1, math.ceil(sol['MAX_ITER'] / math.ceil(n / sol['IMS_PER_BATCH'])))
    raise _error(f'DATASETS.TRAIN={tuple(names)!r}: cannot turn SOLVER.MAX_ITER into epochs '
                 f"(known: {', '.join(TRAIN_IMAGES)}, or registered datasets)")


def translate(d2: Dict[str, Any], num_gpus: Optional[int] = None) -> Dict[str, Any]:
    """Our config (a plain dict) of the detectron2-style config ``d2``; ``num_gpus`` splits
    ``SOLVER.IMS_PER_BATCH`` (the total batch) into ``data.imgs_per_gpu``; ``None``: 8
    processes (AdelaiDet's setting) when the batch divides by 8, else 1."""
    _only(d2, 'VERSION', [2])
    _only(d2, 'TEST.PRECISE_BN.ENABLED', [False])
    _only(d2, 'TEST.DETECTIONS_PER_IMAGE', [100])
    _only(d2, 'MODEL.DEVICE', ['cuda', 'cpu'])
    s = d2['MODEL']['SOLOV2']
    train_pipeline, test_pipeline = _pipelines(d2)
    cfg: Dict[str, Any] = dict(
        model=_model(d2), train_cfg=dict(),
        test_cfg=dict(nms_pre=s['NMS_PRE'], score_thr=s['SCORE_THR'], mask_thr=s['MASK_THR'],
                      update_thr=s['UPDATE_THR'], kernel=s['NMS_KERNEL'],
                      sigma=float(s['NMS_SIGMA']), max_per_img=s['MAX_PER_IMG']),
        data=_data(d2, train_pipeline, test_pipeline, num_gpus),
        test_pipeline=test_pipeline)
    if d2['DATASETS']['TRAIN']:
        cfg.update(_schedule(d2))
    cfg.update(checkpoint_config=dict(interval=1),
               log_config=dict(interval=20, hooks=[dict(type='TextLoggerHook')]),
               dist_params=dict(backend='nccl'), log_level='INFO', load_from=None,
               resume_from=None, workflow=[('train', 1)], work_dir=d2['OUTPUT_DIR'],
               cudnn_benchmark=d2['CUDNN_BENCHMARK'])
    if d2['SEED'] >= 0:
        cfg['seed'] = d2['SEED']
    if d2['SOLVER']['AMP']['ENABLED']:
        cfg['fp16'] = dict(loss_scale='dynamic')
    if d2['TEST']['EVAL_PERIOD'] > 0:
        cfg['evaluation'] = dict(interval=1, metric='segm')
    return cfg


def load_yaml_config(path: str, opts: Sequence[str] = (), num_gpus: Optional[int] = None):
    """The :class:`~mmdet_solo.config.Config` of an AdelaiDet YAML file (see the module
    docstring); ``Config.fromfile`` calls this for ``.yaml``/``.yml`` paths."""
    from .config import Config
    path = osp.abspath(osp.expanduser(path))
    d2, files = _load(path, opts)
    texts = []
    for file in files:
        with open(file, encoding='utf-8') as f:
            texts.append(f'# {file}\n' + f.read())
    text = '\n'.join(texts)
    if opts:
        text += '\n# overrides\n' + ' '.join(map(str, opts))
    return Config(translate(d2, num_gpus), filename=path, text=text, unread_names=())


__all__ = ['DEFAULTS', 'BUILTIN_DATASETS', 'TRAIN_IMAGES', 'YAML_EXTENSIONS',
           'register_coco_instances', 'load_d2_cfg', 'merge_opts', 'translate',
           'load_yaml_config']
