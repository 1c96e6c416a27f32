# The README's two commands are `make demo` and `make test`; both set up .venv first.
PY := .venv/bin/python
VOXFACE := .venv/bin/voxface
SHARED_DATA ?= ../shared/data

.PHONY: setup demo test test-fast bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(VOXFACE) demo --out runs/demo --corpus data/synthetic

test: setup
	VOXFACE_SHARED_DATA=$(SHARED_DATA) $(PY) -m pytest -q --timeout 900 tests

test-fast: setup
	VOXFACE_SHARED_DATA=$(SHARED_DATA) $(PY) -m pytest -q -m "not slow" tests

bench: setup
	for f in bench/*.py; do echo "== $$f"; VOXFACE_SHARED_DATA=$(SHARED_DATA) $(PY) $$f || exit 1; done

clean:
	rm -rf data/synthetic runs .pytest_cache
