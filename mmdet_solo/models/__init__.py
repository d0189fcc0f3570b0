"""Models; importing this package registers every backbone, neck, head, loss and detector."""
from . import backbones, detectors, heads, losses, necks  # noqa: F401  (registration)
from .builder import build_detector

__all__ = ['build_detector']
