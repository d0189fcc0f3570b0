from .single_stage_ins import SOLO, SOLOv2, SingleStageInsDetector

__all__ = ['SOLO', 'SOLOv2', 'SingleStageInsDetector']
