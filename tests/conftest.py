import os
import sys

# make tests/golden_utils.py importable from every test module
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
