# py4cl2-cffi — the two entry points are `make demo` and `make test` (see README.md).

CARGO ?= cargo
export PY4CL2_CFFI_SHIM := $(CURDIR)/target/release/libpy4cl2_cffi_shim.so
DEMO_CONFIG := $(CURDIR)/target/demo-config.toml

.PHONY: demo test setup venvs rust-checks lint-workflows rust-tests lisp-matrix install-tests sid-matrix matrix-total matrix-readme bench

## Start Python from Lisp and do real work (math, strings, a dict, an error caught, numpy).
demo: setup
	@venv=$$(tools/make-venvs.sh 3.12 | cut -d' ' -f2); \
	  [ -n "$$venv" ] || venv=$$(tools/make-venvs.sh | tail -1 | cut -d' ' -f2); \
	  PY4CL2_CFFI_CONFIG=$(DEMO_CONFIG) target/release/py4cl2-cffi-config use "$$venv" && \
	  PY4CL2_CFFI_CONFIG=$(DEMO_CONFIG) sbcl --script lisp/demo.lisp

## Every test: formatting and lints, the CI workflow's lint, the Rust suites against every
## interpreter, the Lisp matrix on this machine (CPython 3.8–3.13, SBCL and ECL), installing
## as a user does and environments on demand, then the same shim in a Debian sid root
## (CPython 3.14/3.15, SBCL 2.6, ECL 24), and the total.
test: setup venvs rust-checks lint-workflows rust-tests lisp-matrix install-tests sid-matrix matrix-total

setup:
	tools/setup.sh

venvs:
	tools/make-venvs.sh > /dev/null

rust-checks:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets --quiet -- -D warnings

lint-workflows:
	tools/lint-workflows.sh

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

## Benchmarks: the Rust floor per interpreter, then the Lisp benchmarks.
bench: setup
	target/release/floor-bench
	sbcl --script bench/lisp/bench.lisp
	sbcl --script bench/lisp/strings.lisp
	ecl --norc --shell bench/lisp/strings.lisp
