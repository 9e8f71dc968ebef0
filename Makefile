# Orders Lab. The two commands a student needs: `make lab` and `make test`.
PYTHON      ?= python3
VENV        := .venv
LAMBDA_VENV := .venv-lambda
WHEELS      := .cache/wheels
BIN         := $(VENV)/bin
STAMP       := .cache/stamps

.PHONY: setup lab jupyter test test-fast bench clean-notebooks cloud-stop clean

setup: $(STAMP)/venv $(STAMP)/lambda-venv $(STAMP)/wheels $(STAMP)/db-server $(STAMP)/browser

$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (Orders Lab)" >/dev/null
	@touch $@

# The Lambda runtime environment: only what AWS's Python runtime holds (boto3) plus awslambdaric.
$(STAMP)/lambda-venv: lambda_code/runtime-requirements.txt
	@mkdir -p $(STAMP)
	@test -x $(LAMBDA_VENV)/bin/python || $(PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install -q --disable-pip-version-check -r lambda_code/runtime-requirements.txt
	@touch $@

# Wheels kept for offline use: the pymysql layer and the packages the EC2 instance installs.
$(STAMP)/wheels: lambda_code/layers/pymysql/requirements.txt flask_app/requirements.txt $(STAMP)/venv
	@mkdir -p $(WHEELS)
	$(BIN)/pip download -q --disable-pip-version-check --only-binary=:all: -d $(WHEELS) \
		-r lambda_code/layers/pymysql/requirements.txt -r flask_app/requirements.txt
	@touch $@

$(STAMP)/db-server: scripts/ensure-db-server.sh
	@mkdir -p $(STAMP)
	scripts/ensure-db-server.sh
	@touch $@

$(STAMP)/browser: scripts/ensure-browser.sh
	@mkdir -p $(STAMP)
	scripts/ensure-browser.sh
	@touch $@

lab: setup
	$(BIN)/labkit run --target local --to 14
	@$(BIN)/labkit status --urls
	@echo "Open the notebooks with: make jupyter"

jupyter: setup
	$(BIN)/jupyter lab notebooks/

test: setup
	$(BIN)/python -m pytest tests/unit tests/app tests/localcloud tests/labkit tests/browser
	$(BIN)/python -m pytest -p no:randomly --nbval-lax --sanitize-with tests/notebooks/sanitize.cfg notebooks/ tests/notebooks

test-fast: setup
	$(BIN)/python -m pytest tests/unit tests/app -q

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-notebooks: setup
	$(BIN)/python scripts/clean_notebooks.py notebooks/*.ipynb

cloud-stop:
	-$(BIN)/labkit cloud stop

clean: cloud-stop
	rm -rf $(VENV) $(LAMBDA_VENV) .cache .labkit runs
