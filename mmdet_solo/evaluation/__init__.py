"""COCO evaluation of ``InstanceResult`` lists."""
from .coco_eval import (ALLOWED_METRICS, check_metrics, coco_evaluate, dump_results_json,
                        format_table, print_log, results2json)
from .results_io import dump_json_atomic, load_json

__all__ = ['ALLOWED_METRICS', 'check_metrics', 'coco_evaluate', 'dump_results_json',
           'format_table', 'print_log', 'results2json', 'dump_json_atomic',
           'load_json']
