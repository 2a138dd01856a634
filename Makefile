# ECHOES Lab: two commands.
#   make hub   installs everything and starts the hub with the embedded local profile
#   make test  installs everything, runs ruff and the whole test suite (make test-unit: the fast part)
# Installing is idempotent: stamps skip what is already done, so a second run spends seconds.

# Debian's interpreter, not one under /root: when the hub runs as root, users' servers run
# under their own system accounts and must be able to execute the venv's python.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11 /usr/bin/python3) python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.echoes-installed
SYSTEM_STAMP := $(VENV)/.echoes-system
PROXY := $(VENV)/proxy/node_modules/.bin/configurable-http-proxy
SETTINGS ?= hub_config/local.toml

.PHONY: hub test test-unit lint install system-deps clean-venv docs docs-screenshots

hub: install
	$(BIN)/sphinx-build -b html -q -d docs/_build/doctrees docs docs/_build/html || \
		echo "make: the documentation did not build (make docs says why); /hub/docs/ says so" >&2
	$(BIN)/echoes-lab hub --settings $(SETTINGS)

# the whole suite on three pytest-xdist workers, a test module on one worker (a module's hub is
# shared by its tests): a real hub mostly waits (for its servers, kernels, timeouts), so three
# workers fill two cores
test: lint system-deps docs
	$(BIN)/python -m pytest -n 3 --dist loadfile -rs --durations=15 $(PYTEST_ARGS)

# the fast tests alone (no hub, browser or notebook runs): under a minute
test-unit: lint
	$(BIN)/python -m pytest -n 2 -m "not integration and not browser and not slow" $(PYTEST_ARGS)

# the documentation (docs/, served by the hub at /hub/docs/): a warning is an error, so a broken
# internal link or a malformed docstring fails; then every {doctest} example of the guides runs
docs: install
	$(BIN)/sphinx-build -b html -W --keep-going -q -d docs/_build/doctrees docs docs/_build/html
	$(BIN)/sphinx-build -b doctest -W --keep-going -q -d docs/_build/doctrees docs docs/_build/doctest

# the guides' screenshots are committed copies of what the browser test of the docs
# (tests/integration/test_browser_docs.py) saw last: refresh them after it ran
docs-screenshots:
	cp test-artifacts/docs/home.png test-artifacts/docs/lab-help-menu.png docs/_static/screenshots/

lint: install
	$(BIN)/ruff check .

install: $(STAMP)

# jsonschema imports rfc3987-syntax (an optional checker of the 'iri' format, which no Jupyter
# schema uses) in every hub and server process, and that import builds 35 parsers: 1.2 s per
# start (python-jsonschema/jsonschema#1428, jupyter-server/jupyter_server#1559). Without it
# jsonschema skips that one format; pip check stays clean.
$(STAMP): pyproject.toml constraints.txt hub_config/proxy/package.json hub_config/proxy/package-lock.json hub_config/viewer/package.json hub_config/viewer/package-lock.json kernels/echoes/kernel.json hub_config/lab/overrides.json
	@command -v node >/dev/null 2>&1 || { echo "make: Node.js ('node') is not installed: apt-get install nodejs npm, then run make again" >&2; exit 3; }
	@command -v npm >/dev/null 2>&1 || { echo "make: npm is not installed: apt-get install npm, then run make again" >&2; exit 3; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[hub,dev]'
	$(BIN)/python -m pip uninstall --quiet --yes rfc3987-syntax
	mkdir -p $(VENV)/proxy
	cp hub_config/proxy/package.json hub_config/proxy/package-lock.json $(VENV)/proxy/
	cd $(VENV)/proxy && npm ci --silent --no-audit --no-fund
	# the commons viewer's OpenSeadragon + Annotorious, served by the commons service (no CDN)
	mkdir -p $(VENV)/viewer
	cp hub_config/viewer/package.json hub_config/viewer/package-lock.json $(VENV)/viewer/
	cd $(VENV)/viewer && npm ci --silent --no-audit --no-fund
	$(BIN)/python -c "import sys, pathlib; from echoes_lab.hub.launch import install_kernel, install_lab_settings as s; install_kernel(pathlib.Path(sys.prefix) / 'share' / 'jupyter'); s(pathlib.Path(sys.prefix))"
	# the climate engine's numba kernels, compiled once into echoes_lab/climate/__pycache__: no
	# kernel of any user compiles them again (engine._seed_user_cache)
	$(BIN)/python -c "from echoes_lab.climate import engine; engine.warm()"
	touch $@

# Debian packages the tests need: a real browser for the end-to-end tests, git for materials,
# PostgreSQL for the commons' store, Tesseract for the OCR actor, acl for project folders,
# espeak-ng to speak a known text for the transcription tests, Slurm (slurmctld, slurmd, munge)
# with iproute2/nsenter for the two-node cluster of tests/integration/test_slurm.py.
DEBIAN_PACKAGES := chromium fonts-dejavu-core git postgresql tesseract-ocr tesseract-ocr-eng acl espeak-ng prometheus slurmctld slurmd slurm-client munge iproute2 util-linux
system-deps: $(SYSTEM_STAMP)

$(SYSTEM_STAMP): Makefile
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "make: the tests need: apt-get install $$missing (as root)" >&2; exit 3; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	mkdir -p $(VENV) && touch $@

clean-venv:
	rm -rf $(VENV)
