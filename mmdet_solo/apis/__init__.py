from .inference import inference_detector, init_detector, show_result_ins, show_result_pyplot

__all__ = ['init_detector', 'inference_detector', 'show_result_ins', 'show_result_pyplot']
