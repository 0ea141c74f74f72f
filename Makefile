# The two commands a newcomer needs: `make run` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.yaml
STAMP := $(VENV)/.installed
# The platform team's scanners (checkov, hadolint, kubernetes-validate, kubectl for kustomize), apart from .venv:
# checkov pins its own boto3/botocore.
SCANNERS ?= .venv-scanners
SCANNERS_STAMP := $(SCANNERS)/.installed

# kubemq-targets itself, built from its Go sources beside this clone, for the differential suite (tests/differential).
ANCHOR ?= ../shared/anchors/kubemq-targets-s3
ANCHOR_OUT ?= $(HOME)/.cache/kubemq-targets-s3-anchor
ANCHOR_BIN := $(ANCHOR_OUT)/bin/s3anchor

.PHONY: install scanners anchor run test test-fast lint format validate schema docs broker bench clean

install: $(STAMP)

# Re-install only when the dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,embedded]'
	touch $(STAMP)

scanners: $(SCANNERS_STAMP)

$(SCANNERS_STAMP): tests/ops/scanners.txt
	$(PYTHON) -m venv $(SCANNERS)
	$(SCANNERS)/bin/python -m pip install --quiet --upgrade pip
	$(SCANNERS)/bin/python -m pip install --quiet -r tests/ops/scanners.txt
	touch $(SCANNERS_STAMP)

ifneq ($(wildcard $(ANCHOR)/build.sh),)
## Build kubemq-targets' aws.s3 target from its sources (installs Debian's Go toolchain; rebuilt when they change).
anchor: $(ANCHOR_BIN)

$(ANCHOR_BIN): $(ANCHOR)/build.sh $(ANCHOR)/SHA256SUMS
	S3ANCHOR_OUT=$(ANCHOR_OUT) bash $(ANCHOR)/build.sh
else
anchor:
	@echo "kubemq-targets' sources are not at $(ANCHOR): the differential suite (tests/differential) will be skipped"
endif

## Start the connector on the embedded defaults (development broker + SeaweedFS).
run: install
	$(BIN)/kubemq-s3 run -c $(CONFIG)

## Install, check the code (lint, format, types) and run the whole test suite.
test: install scanners anchor lint
	$(BIN)/python -m pytest

## The suite without the large-object tests.
test-fast: install scanners anchor lint
	$(BIN)/python -m pytest -m "not slow"

## Lint, formatting and type checks, as `make test` runs them.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Apply the formatter and the linter's safe fixes.
format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

validate: install
	$(BIN)/kubemq-s3 validate -c $(CONFIG)

## Regenerate the shipped JSON Schema of config.yaml.
schema: install
	$(BIN)/kubemq-s3 schema > config.schema.json

## Regenerate the configuration and method reference from the declarations.
docs: install
	$(BIN)/kubemq-s3 docs > docs/reference.md

broker: install
	$(BIN)/kubemq-s3 broker --port 50000

## The benchmarks: small requests against a minimal responder, then large objects, then the aws.s3 source draining a bucket.
bench: install
	$(BIN)/python benchmarks/bench_requests.py
	$(BIN)/python benchmarks/bench_large_objects.py
	$(BIN)/python benchmarks/bench_bucket_source.py

clean:
	rm -rf $(VENV) $(SCANNERS) .pytest_cache build *.egg-info .data
