# mmdet_solo — `make demo` and `make test` each set up .venv first (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The setup pins the PyTorch build we test with; package metadata only asks for ranges.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: setup test test-fast demo bench clean

setup: $(STAMP)

$(STAMP): setup.py requirements/runtime.txt requirements/tests.txt requirements/deploy.txt requirements/build.txt requirements/optional.txt $(wildcard mmdet_solo/ops/csrc/*)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -r requirements/runtime.txt -r requirements/tests.txt -r requirements/deploy.txt
	# optional extras (TensorBoard logging, faster-coco-eval, cityscapesscripts): installed so
	# that their tests run instead of skipping
	$(PY) -m pip install -r requirements/optional.txt
	$(PY) -m pip install -r requirements/build.txt
	# builds the Matrix NMS extension (C++; CUDA when a toolkit and GPU are present or FORCE_CUDA=1)
	$(PY) -m pip install -v --no-build-isolation --no-deps -e .
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q tests

demo: setup
	bash tools/run_demo.sh

bench: setup
	$(PY) benchmarks/bench_inference.py

clean:
	rm -rf build *.egg-info .pytest_cache
