# Two commands on a fresh machine: `make build` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export NO_MKDOCS_2_WARNING := 1

.PHONY: build test install browser bench serve check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

build: $(STAMP)
	$(BIN)/mkdocs build --clean --site-dir site

check: $(STAMP)
	$(BIN)/pmkb check

serve: $(STAMP)
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# The browser tests drive Debian's Chromium through Playwright (never a browser
# download). CI runs as root, so a missing Chromium is installed here.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing: run 'sudo apt-get install -y chromium'" >&2; exit 1; \
	  fi; }

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/blame_speed.py --sentences 10000
	$(BIN)/python benchmarks/run.py --sizes 1000 10000 --build 1000 5000

clean:
	rm -rf site .pytest_cache build *.egg-info plugins/*.egg-info
