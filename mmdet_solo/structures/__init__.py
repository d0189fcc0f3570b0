from .results import InstanceResult, masks_to_boxes

__all__ = ['InstanceResult', 'masks_to_boxes']
