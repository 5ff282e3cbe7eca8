# Shortcuts for the long commands. `make reproduce` runs every experiment of the problem
# set and writes runs/report/; an interrupted one continues where it stopped.
PYTHON ?= python

.PHONY: reproduce smoke report test bench

reproduce:  ## every stage at the problem set's settings, then the report
	$(PYTHON) scripts/reproduce.py

smoke:  ## the same pipeline with tiny settings (a few minutes)
	$(PYTHON) scripts/reproduce.py --smoke

report:  ## rebuild runs/report/ from the runs that exist
	$(PYTHON) scripts/report.py

test:  ## the test suite
	pytest -q

bench:  ## timings against their targets (run on an idle machine)
	$(PYTHON) scripts/bench.py
