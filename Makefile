# Two commands do everything on a fresh machine:
#   make run    install what is missing, open the application on the bundled sample
#   make test   install what is missing, run the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Debian libraries the Qt window needs (a no-op where present).
QT_DEBS := libgl1 libglib2.0-0 libfontconfig1 libxkbcommon-x11-0 libdbus-1-3 \
           libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 \
           libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxcb-xfixes0 \
           libxcb-xkb1 libxkbcommon0 fonts-dejavu-core

.PHONY: run test test-fast lint screenshot system-deps clean

run: $(STAMP) system-deps
	$(PY) app.py --workdir working_directory

# The whole suite in TEST_WORKERS processes (one file per process at a time).
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The quick lane while working: no window, no TensorFlow, no child processes.
test-fast: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache
	SEGLOOP_FAST_LANE=1 $(PY) -m pytest -q -m "not slow and not gui"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache

system-deps:
	@missing=""; for p in $(QT_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing libraries Qt needs:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "Qt may need these Debian packages (install them as root):$$missing"; fi; \
	fi

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

screenshot: $(STAMP) system-deps
	$(PY) scripts/screenshot.py --photos working_directory/photos --model checkpoints --out docs/images

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
