"""The problem set's deliverables, beside the framework: its report (`report/`: the questions
answered from the runs, tables and figures, HTML and PDF) and the benchmarks behind the
measured figures (`benchmarks/`, run by scripts/bench.py). They import ucl; ucl never
imports them (pyproject.toml's import-linter contracts)."""
