# `make demo` and `make test` set themselves up: a virtual environment in .venv with the package
# installed (editable) with the [lab] and [test] extras. PYTHON may point at another interpreter (3.10+).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Two test processes: the suite is mostly tracing and XLA compiles, which run on one core each (6.8 min
# against 8.9 on 2 cores). TEST_WORKERS=0 runs it in one process. A module marked with an xdist_group runs
# on one worker (--dist loadgroup), so a costly module fixture (the example runs, the wheel) is made once.
# The 15 slowest tests are listed at the end, to keep the suite within its 10-minute budget.
TEST_WORKERS ?= 2

.PHONY: demo test install clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[lab,test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hyperadam-keras evaluate --suite quick --output-dir demo_output
	$(BIN)/hyperadam-keras compare --model examples/compare_model.py:build --seeds 2 --quiet --output-dir demo_output/compare
	HYPERADAM_KERAS_QUIET_START=1 TF_CPP_MIN_LOG_LEVEL=3 TF_CPU_ALLOCATOR_USE_BFC=true $(BIN)/python examples/quickstart.py --seeds 1 --output-dir demo_output/quickstart --tensorboard demo_output/tensorboard

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup --durations=15 --cpu-durations=15 tests

clean:
	rm -rf $(VENV) build dist *.egg-info demo_output
