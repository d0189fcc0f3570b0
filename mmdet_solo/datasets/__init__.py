"""Datasets, wrappers, samplers, data loaders and the data pipelines."""
from .builder import (EpochDataLoader, EpochWorkerInit, batch_size_of, build_dataloader,
                      build_dataset, build_test_dataloader, worker_seed)
from .class_names import CITYSCAPES_CLASSES, COCO_CLASSES
from .coco import CocoDataset
from .cityscapes import CityscapesDataset
from .collate import collate, collate_per_gpu
from .custom import CustomDataset, get_classes
from .dataset_wrappers import ConcatDataset, RepeatDataset
from .serialize import SerializedList
from .pipelines import *  # noqa: F401,F403
from .pipelines import __all__ as _pipelines_all
from .samplers import DistributedGroupSampler, DistributedSampler, GroupSampler

__all__ = [
    'CustomDataset', 'CocoDataset', 'CityscapesDataset', 'ConcatDataset', 'RepeatDataset',
    'COCO_CLASSES', 'CITYSCAPES_CLASSES',
    'get_classes', 'build_dataset', 'build_dataloader', 'build_test_dataloader', 'batch_size_of',
    'SerializedList', 'EpochDataLoader', 'EpochWorkerInit',
    'worker_seed', 'collate', 'collate_per_gpu', 'GroupSampler', 'DistributedGroupSampler',
    'DistributedSampler',
] + list(_pipelines_all)
