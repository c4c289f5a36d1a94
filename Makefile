# The two commands a newcomer needs: `make demo` and `make test` (each sets up first if needed).
PYTHON ?= python

.PHONY: install demo test

install:
	bash tools/install.sh

demo: install
	$(PYTHON) tools/demo.py

test: install
	$(PYTHON) -m pytest tests -n 2
