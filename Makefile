# The book's two commands (see README.md):
#   make book   install the environment if needed, execute every chapter, build the site into _build/html
#   make test   the same environment; unit tests, every chapter under nbval, the site built and checked in Chromium
# Both install what is missing and nothing else: a second run reinstalls nothing that is up to date.

SHELL   := /bin/bash
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# The environment is rebuilt only when requirements.txt or pyproject.toml change.
STAMP   := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml 2>/dev/null | sha256sum | cut -c1-12)
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser || command -v google-chrome || echo chromium)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# Progress bars are for readers running a notebook, not for the website: the builds and tests run without them.
export TQDM_DISABLE := 1

.PHONY: book test env browser unit chapters notebooks site site-check clean data-release app app-check

book: env
	rm -rf _build/.jupyter_cache
	@$(MAKE) --no-print-directory chapters site

test: env browser
	$(BIN)/python -m pytest tests/unit -q --durations=10
	rm -rf _build/.jupyter_cache
	@$(MAKE) --no-print-directory chapters site
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests/site -q
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests/app -q -s

# Execute every chapter under nbval (tests/nbval_to_cache.py keeps the executed notebooks in the execution
# cache, so the site build renders them without executing them again). Two chapters run at a time, each in its
# own kernel, heaviest first: one chapter alone keeps 2 cores busy only part of the time (plotting, data loading,
# small models), and two together finish about a third sooner. Chapter 7's app loads the models that chapters
# 4-6 cache, so it runs after them. OpenMP threads wait passively: spinning threads of one kernel would slow the
# other's. The chapters' results do not depend on this: each kernel keeps the thread count a reader's has.
CHAPTERS_FIRST := $(foreach n,04 05 02 06 03 01 00,$(wildcard chapters/$(n)_*.ipynb))
CHAPTERS_AFTER := $(wildcard chapters/07_*.ipynb)
NBRUN := OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -p tests.nbval_to_cache --nbval-lax --nbval-current-env -q
chapters: env
	@missing="$(filter-out $(CHAPTERS_FIRST) $(CHAPTERS_AFTER),$(wildcard chapters/*.ipynb))"; \
	test -z "$$missing" || { echo "error: Makefile: add $$missing to CHAPTERS_FIRST or CHAPTERS_AFTER" >&2; exit 1; }
	@start=$$(date +%s); \
	$(NBRUN) -n 2 --dist loadfile --no-loadscope-reorder $(CHAPTERS_FIRST) && \
	$(NBRUN) $(CHAPTERS_AFTER) && \
	echo "All chapters executed in $$(( $$(date +%s) - start )) s."

# Build _build/html from the notebooks, executing those not in the execution cache (`make book` fills it first).
site: env
	@start=$$(date +%s); \
	$(BIN)/jupyter-book build . --all --warningiserror --nitpick --keep-going --builder html && \
	echo "Built in $$(( $$(date +%s) - start )) s. Open file://$(CURDIR)/_build/html/index.html in a browser."

env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (book)" >/dev/null
	@rm -f $(VENV)/.installed-* && touch $@ && echo "Environment ready in $(VENV)."

# Headless Chromium checks the built site; installed from Debian's packages where it is missing.
browser:
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Chromium (Debian package) for the site checks ..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "error: the site checks need Chromium: install it (e.g. 'sudo apt-get install chromium') or set CHROMIUM=/path/to/chrome" >&2; exit 1; fi; }

# The app of chapter 7 in a browser on this computer only (Voila on 127.0.0.1:8866, no token). Progress bars stay
# on: a model missing from the cache is trained once.
app: env
	env -u TQDM_DISABLE $(BIN)/python -m helpers.app --port=8866

# Pieces of `make test`, for authors.
unit: env
	$(BIN)/python -m pytest tests/unit -q --durations=10
notebooks: chapters   # the old name of `make chapters`
site-check: env browser
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests/site -q
app-check: env browser
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests/app -q -s

# The data archives attached to the GitHub release (for readers who install only the package, e.g. Colab).
data-release: env
	$(BIN)/python -m helpers.data --update --archives _build/release

clean:
	rm -rf _build
