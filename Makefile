# py4cl2-cffi — the two entry points are `make demo` and `make test` (see README.md).

CARGO ?= cargo
export PY4CL2_CFFI_SHIM := $(CURDIR)/target/release/libpy4cl2_cffi_shim.so
DEMO_CONFIG := $(CURDIR)/target/demo-config.toml

.PHONY: demo test setup venvs rust-checks lint-workflows api-docs rust-tests lisp-matrix install-tests sid-matrix matrix-total matrix-readme bench

## Start Python from Lisp and do real work (math, strings, a dict, an error caught, numpy).
demo: setup
	@venv=$$(tools/make-venvs.sh 3.12 | cut -d' ' -f2); \
	  [ -n "$$venv" ] || venv=$$(tools/make-venvs.sh | tail -1 | cut -d' ' -f2); \
	  PY4CL2_CFFI_CONFIG=$(DEMO_CONFIG) target/release/py4cl2-cffi-config use "$$venv" && \
	  PY4CL2_CFFI_CONFIG=$(DEMO_CONFIG) sbcl --script lisp/demo.lisp

## Every test: formatting and lints, the CI workflow's lint, the Rust suites against every
## interpreter, the Lisp matrix on this machine (CPython 3.8–3.13, SBCL and ECL), installing
## as a user does and environments on demand, then the same shim in a Debian sid root
## (CPython 3.14/3.15, SBCL 2.6, ECL 24), and the total; each part's duration is printed.
test:
	@MAKE="$(MAKE)" tools/timed-parts.sh setup venvs rust-checks lint-workflows api-docs rust-tests lisp-matrix install-tests sid-matrix matrix-total

setup:
	tools/setup.sh

venvs:
	tools/make-venvs.sh > /dev/null

rust-checks:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets --quiet -- -D warnings

lint-workflows:
	tools/lint-workflows.sh

## docs/api.md must be what tools/api-reference.lisp makes from the docstrings (every export
## documented); regenerate it with: sbcl --script tools/api-reference.lisp > docs/api.md
api-docs:
	@sbcl --script tools/api-reference.lisp > target/api.md && diff -u docs/api.md target/api.md \
	  || { echo "docs/api.md is out of date or an export has no docstring (see above)" >&2; exit 1; }

rust-tests:
	PY4CL2_CFFI_REQUIRE_ALL=1 $(CARGO) test --release --workspace

lisp-matrix:
	matrix/run.sh

## The Debian sid part (builds and caches the root on first use; see tools/sid-root.sh).
sid-matrix:
	matrix/sid.sh

matrix-total:
	@read -r hp hf hs < target/matrix/total.txt; read -r sp sf ss < target/matrix/sid/total.txt; \
	  echo "matrix total (host + Debian sid): $$((hp + sp)) passed, $$((hf + sf)) failed, $$((hs + ss)) skipped"

## A clean clone loaded by a plain SBCL (the shim built with cargo, then reused), the error
## without cargo, pystart :requires, a first compile without warnings (tests/install/run.sh).
install-tests:
	tests/install/run.sh

## Refresh README.md's table from the last matrix run.
matrix-readme:
	matrix/readme-table.sh

## Benchmarks (docs/performance.md): the Rust floor; bench.lisp and containers.lisp under SBCL on
## Python 3.8, 3.12 and 3.13, and under ECL on 3.12; strings.lisp under SBCL and ECL (3.12);
## restart.lisp; then the chart (docs/img/bench.png) and the per-version table of target/bench/*.csv.
## One process at a time; each part's duration is printed.
BENCH_VERSIONS := 3.8 3.12 3.13
bench: setup
	@t_all=$$(date +%s.%N); \
	  since() { awk "BEGIN { printf \"%.1f\", $$(date +%s.%N) - $$1 }"; }; \
	  part() { label=$$1; shift; t0=$$(date +%s.%N); echo "== $$label"; \
	           "$$@" || { echo "bench: $$label FAILED"; exit 1; }; echo "== $$label: $$(since $$t0) s"; }; \
	  mkdir -p target/bench && rm -f target/bench/*.csv && \
	  part "Rust floor (floor-bench)" target/release/floor-bench && \
	  tools/make-venvs.sh $(BENCH_VERSIONS) > target/bench/venvs.txt && \
	  while read -r xy venv; do \
	    PY4CL2_CFFI_CONFIG=target/bench/config-$$xy.toml target/release/py4cl2-cffi-config use "$$venv" > /dev/null 2>&1 || exit 1; \
	  done < target/bench/venvs.txt && \
	  for xy in $(BENCH_VERSIONS); do \
	    grep -q "^$$xy " target/bench/venvs.txt || { echo "bench: SKIPPED Python $$xy: no venv (tools/make-venvs.sh)"; continue; }; \
	    export PY4CL2_CFFI_CONFIG=$(CURDIR)/target/bench/config-$$xy.toml; \
	    part "SBCL bench.lisp, Python $$xy" sbcl --script bench/lisp/bench.lisp || exit 1; \
	    part "SBCL containers.lisp, Python $$xy" sbcl --script bench/lisp/containers.lisp || exit 1; \
	  done && \
	  export PY4CL2_CFFI_CONFIG=$(CURDIR)/target/bench/config-3.12.toml && \
	  part "ECL bench.lisp, Python 3.12" ecl --norc --shell bench/lisp/bench.lisp && \
	  part "ECL containers.lisp, Python 3.12" ecl --norc --shell bench/lisp/containers.lisp && \
	  part "SBCL strings.lisp, Python 3.12" sbcl --script bench/lisp/strings.lisp && \
	  part "ECL strings.lisp, Python 3.12" ecl --norc --shell bench/lisp/strings.lisp && \
	  part "SBCL restart.lisp" sbcl --script bench/lisp/restart.lisp && \
	  part "chart.lisp (matplotlib, Python 3.12)" sbcl --script bench/lisp/chart.lisp && \
	  echo && tools/bench-table.py && \
	  echo && echo "make bench: $$(since $$t_all) s in all"
