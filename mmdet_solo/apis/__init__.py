from .inference import inference_detector, init_detector, show_result_ins, show_result_pyplot
from .test import (EncodedInstanceResult, check_classes, multi_gpu_test, result_to_dict,
                   single_gpu_test)

__all__ = ['init_detector', 'inference_detector', 'show_result_ins', 'show_result_pyplot',
           'single_gpu_test', 'multi_gpu_test', 'EncodedInstanceResult', 'result_to_dict',
           'check_classes']
