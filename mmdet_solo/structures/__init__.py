from .results import EncodedInstanceResult, InstanceResult, encode_rles, masks_to_boxes

__all__ = ['InstanceResult', 'EncodedInstanceResult', 'encode_rles', 'masks_to_boxes']
