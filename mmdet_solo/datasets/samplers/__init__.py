"""Samplers: aspect-ratio group samplers (training) and the distributed test sampler."""
from .distributed_sampler import (DistributedGroupSampler, DistributedSampler, TestSampler,
                                  aspect_ratio_order)
from .group_sampler import GroupSampler, epoch_rng, group_flags

__all__ = ['GroupSampler', 'DistributedGroupSampler', 'DistributedSampler', 'TestSampler',
           'aspect_ratio_order', 'epoch_rng', 'group_flags']
