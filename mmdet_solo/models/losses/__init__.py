from .dice_loss import DiceLoss, dice_loss
from .focal_loss import FocalLoss, sigmoid_focal_loss

__all__ = ['DiceLoss', 'dice_loss', 'FocalLoss', 'sigmoid_focal_loss']
