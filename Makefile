# Orders Lab. The two commands a student needs: `make lab` and `make test`.
PYTHON      ?= python3
# The Lambda runtime environment's Python, which is the functions' runtime on the local cloud
# (labkit/lambda_platform.py): python3.11 (the tutorial's runtime) when the machine has it, else the newest it has:
# 3.13 (Debian 13), 3.12 (Ubuntu 24.04), 3.10 (Ubuntu 22.04). On AWS the functions use lambda_platform.AWS_RUNTIME
# whatever the machine has (python3.10 is deprecated there); the layer's wheels are downloaded for both runtimes.
LAMBDA_PYTHONS := python3.11 python3.13 python3.12 python3.10
LAMBDA_PYTHON ?= $(firstword $(foreach p,$(LAMBDA_PYTHONS),$(shell command -v $(p) 2>/dev/null)) $(PYTHON))
VENV        := .venv
LAMBDA_VENV := .venv-lambda
WHEELS      := .cache/wheels
BIN         := $(VENV)/bin
STAMP       := .cache/stamps

.PHONY: FORCE setup test-setup classroom-setup lab jupyter lint test test-clouds test-lab test-notebooks test-fast \
	classroom-check bench clean-notebooks cloud-stop clean

# What `make lab` needs, nothing more: what only the tests need (pytest and friends, Debian's chromium) comes
# with `make test` (test-setup), what only the classroom Hub needs (JupyterHub, npm's configurable-http-proxy)
# with `make classroom-setup`. Each step a newcomer waits on says what it does and about how long it takes.
setup: $(STAMP)/system-packages $(STAMP)/venv $(STAMP)/lambda-venv $(STAMP)/wheels \
	.cache/faketime/labkit_faketime_sleep.so .cache/net/labkit_netlink.so

test-setup: setup $(STAMP)/venv-dev $(STAMP)/browser-packages

classroom-setup: setup $(STAMP)/venv-classroom $(STAMP)/hub-proxy

# The system's packages first (python3-venv, mariadb-server, libfaketime, gcc, ...): installed as root, else
# one apt command to run, before anything else fails on their absence.
$(STAMP)/system-packages: scripts/ensure-system-packages.sh scripts/apt-install.sh
	@mkdir -p $(STAMP)
	@echo "setup: [1/5] the system's packages (MariaDB, libfaketime, a C compiler): checked, installed when missing"
	scripts/ensure-system-packages.sh
	@touch $@

$(STAMP)/venv: pyproject.toml jupyter/overrides.json | $(STAMP)/system-packages
	@mkdir -p $(STAMP)
	@echo "setup: [2/5] the lab's Python environment ($(VENV): boto3, moto, pandas, JupyterLab, ...; 1-3 minutes)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (Orders Lab)" >/dev/null
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	cp jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	@touch $@

# The Lambda runtime environment: only what AWS's Python runtime holds (boto3) plus awslambdaric.
# Its Python (LAMBDA_PYTHON) is the functions' runtime (labkit/lambda_platform.py): the layer's wheels are for it.
# The runtime LAMBDA_PYTHON gives (pythonX.Y) is kept in a file rewritten only when it changes: a new choice
# (python3.11 removed, 3.12 picked) builds .venv-lambda anew, and the layer's wheels after it.
$(STAMP)/lambda-runtime: FORCE
	@mkdir -p $(STAMP)
	@runtime="$$($(LAMBDA_PYTHON) -c 'import sys; print("python%d.%d" % sys.version_info[:2])')" && \
		{ test "$$runtime" = "$$(cat $@ 2>/dev/null)" || echo "$$runtime" > $@; }

$(STAMP)/lambda-venv: lambda_code/runtime-requirements.txt $(STAMP)/lambda-runtime | $(STAMP)/system-packages \
		$(STAMP)/venv
	@mkdir -p $(STAMP)
	@echo "setup: [3/5] the Lambda runtime environment ($(LAMBDA_VENV): boto3 and awslambdaric, as on AWS; about 20 s)"
	@reason="$$($(BIN)/python -m labkit.lambda_platform --rebuild-reason $(LAMBDA_VENV) $$(cat $(STAMP)/lambda-runtime))" \
		&& if [ -n "$$reason" ]; then echo "building $(LAMBDA_VENV) anew: $$reason"; rm -rf $(LAMBDA_VENV); fi
	@test -x $(LAMBDA_VENV)/bin/python || $(LAMBDA_PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install -q --disable-pip-version-check -r lambda_code/runtime-requirements.txt
	@touch $@

# Wheels kept for offline use: the pymysql layer and the packages the EC2 instance installs (for the Lambda
# runtime's Python, which the local EC2 image's python3 is).
# The layer's wheels are for AWS Lambda's platform (manylinux2014 x86_64), not this machine's, and for both runtimes:
# the local one (.venv-lambda's Python) and AWS's (lambda_platform.AWS_RUNTIME). pip's options come from
# `python -m labkit.lambda_platform [--aws]`, as labkit builds the layer with them.
$(STAMP)/wheels: lambda_code/layers/pymysql/requirements.txt flask_app/requirements.txt $(STAMP)/venv \
		$(STAMP)/lambda-venv labkit/lambda_platform.py
	@mkdir -p $(WHEELS)
	@echo "setup: [4/5] wheels kept for offline use: the EC2 instance's packages and the pymysql layer (about 15 s)"
	$(LAMBDA_VENV)/bin/pip download -q --disable-pip-version-check --only-binary=:all: -d $(WHEELS) \
		-r flask_app/requirements.txt
	for which in "" --aws; do platform="$$($(BIN)/python -m labkit.lambda_platform $$which)" && \
		$(BIN)/pip download -q --disable-pip-version-check --only-binary=:all: -d $(WHEELS) $$platform \
		-r lambda_code/layers/pymysql/requirements.txt || exit 1; done
	@touch $@

FORCE:

# The lab clock's companion (labkit/localcloud/core/clock.py), preloaded just before libfaketime.
.cache/faketime/labkit_faketime_sleep.so: labkit/localcloud/core/faketime_sleep.c | $(STAMP)/system-packages
	@mkdir -p .cache/faketime
	@echo "setup: [5/5] two small C libraries the local cloud preloads (the lab clock's, the network's)"
	cc -O2 -shared -fPIC -Wall -o $@ labkit/localcloud/core/faketime_sleep.c -ldl

# The tests' own Python packages (pytest, nbval, hypothesis, selenium, ruff, mypy: the `dev` extra), and the
# classroom's, which tests import too (nbgitpuller, JupyterHub).
$(STAMP)/venv-dev: pyproject.toml $(STAMP)/venv
	@echo "test set-up: the tests' Python packages (pytest, nbval, selenium, ruff, mypy, the classroom's; about a minute)"
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,classroom]'
	@touch $@

# Debian's chromium and chromium-driver for the browser tests (tests/browser). Optional: without them (not root,
# no apt) the browser tests are skipped, and the set-up tries again next time.
$(STAMP)/browser-packages: scripts/ensure-system-packages.sh scripts/apt-install.sh | $(STAMP)/system-packages
	@mkdir -p $(STAMP)
	scripts/ensure-system-packages.sh browser
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then touch $@; fi

# The classroom Hub's Python packages (JupyterHub, its idle culler, jupyter-server-proxy: the `classroom` extra).
$(STAMP)/venv-classroom: pyproject.toml $(STAMP)/venv
	@echo "classroom set-up: JupyterHub, its idle culler and jupyter-server-proxy (about 30 s)"
	$(BIN)/pip install -q --disable-pip-version-check -e '.[classroom]'
	@touch $@

# JupyterHub's proxy (npm's configurable-http-proxy) for the classroom: classroom/jupyterhub_config.py.
# Needs Debian's nodejs and npm (installed as root, else the apt command is printed). Optional: without them
# (or when npm fails) the set-up goes on, and tries again next time.
$(STAMP)/hub-proxy: scripts/ensure-hub-proxy.sh scripts/ensure-system-packages.sh | $(STAMP)/system-packages
	@mkdir -p $(STAMP)
	scripts/ensure-system-packages.sh hub
	scripts/ensure-hub-proxy.sh
	@if [ -x .cache/node/node_modules/.bin/configurable-http-proxy ]; then touch $@; fi

# The local cloud's connect() hook (labkit/localcloud/network/service.py), preloaded into the processes it runs.
.cache/net/labkit_netlink.so: labkit/localcloud/network/netlink.c | $(STAMP)/system-packages
	@mkdir -p .cache/net
	cc -O2 -shared -fPIC -Wall -o $@ labkit/localcloud/network/netlink.c -ldl -pthread

# The main job: every notebook through the verification, on the local cloud; the lab stays up afterwards.
lab: setup
	@echo "lab: every notebook through the verification on the local cloud (each notebook's time as it ends)"
	$(BIN)/labkit run --target local --to 14
	@$(BIN)/labkit status --urls
	@echo "The local cloud keeps running (labkit cloud status). Open the notebooks with: make jupyter"
	@echo "  (this run's executed notebooks are in runs/latest/ there: start with runs/latest/14_verification.ipynb)"
	@echo "When done: run notebooks/99_teardown.ipynb (or .venv/bin/labkit down), then .venv/bin/labkit cloud stop"

# As root too (the README's set-up runs as root): Jupyter refuses root without --allow-root.
jupyter: setup
	$(BIN)/jupyter lab --ip=127.0.0.1 $$([ "$$(id -u)" = 0 ] && echo --allow-root) notebooks/

# The linter and the type checker (settings in pyproject.toml: [tool.ruff], [tool.mypy]); a few seconds with
# mypy's cache in .cache/mypy, about 15 s of CPU without it.
lint: test-setup
	$(BIN)/ruff check labkit lambda_code flask_app tests bench scripts classroom
	$(BIN)/mypy

# Lint first; then everything runs against the real local cloud on free ports; each test stops what it starts.
# Three groups side by side (each has its own clouds; they mostly wait on servers, not on the CPU), of about the
# same length on 2 cores (measured with pytest --durations=0, issue 28): the local cloud's tests;
# labkit's, on one whole lab (restored from the clone's checkpoint of it: tests/helpers/lab_checkpoint.py); the
# notebooks (nbval builds the lab through them), then the unit, app and network tests (SHORT_TESTS).
# Each group's output is printed whole when it ends, and any failure fails the target.
SHORT_TESTS := tests/unit tests/app tests/localcloud/test_network.py tests/localcloud/test_network_acls.py \
	tests/localcloud/test_network_ports.py

test: test-setup lint
	@echo "Running three test groups side by side (clouds, lab, notebooks + short tests); each prints when it ends."
	@$(MAKE) --no-print-directory -j3 --output-sync=target test-clouds test-lab test-notebooks

test-clouds: test-setup
	$(BIN)/python -m pytest tests/localcloud $(addprefix --ignore=,$(filter tests/localcloud/%,$(SHORT_TESTS)))

test-lab: test-setup
	$(BIN)/python -m pytest tests/labkit tests/faults tests/browser tests/notebooks

# Two sessions, one after the other: nbval's plugin sets the notebooks' cloud in the environment of its session.
test-notebooks: test-setup
	status=0; \
	$(BIN)/python -m pytest -p tests.notebooks.nbval_cloud --nbval-lax \
		--nbval-sanitize-with tests/notebooks/sanitize.cfg notebooks/ || status=$$?; \
	$(BIN)/python -m pytest $(SHORT_TESTS) || status=$$?; \
	exit $$status

# Many labs on one machine, for real: two clones' labs with default settings (tests/classroom), then the
# classroom on one server (scripts/classroom_check.py, as root): JupyterHub on 127.0.0.1 with two throwaway
# students, the series in each, their isolation checked. Both remove all they create. CI runs this after
# `make test` (outside test's 15-minute budget).
classroom-check: classroom-setup test-setup
	$(BIN)/python -m pytest tests/classroom
	$(BIN)/python scripts/classroom_check.py

test-fast: test-setup
	$(BIN)/python -m pytest tests/unit tests/app -q

bench: test-setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-notebooks: setup
	$(BIN)/python scripts/clean_notebooks.py notebooks/*.ipynb

cloud-stop:
	-$(BIN)/labkit cloud stop

clean: cloud-stop
	rm -rf $(VENV) $(LAMBDA_VENV) .cache .labkit runs
