# The two commands: `make run` (the whole portal with demo data) and `make test` (every test).
# Each installs what it needs. See README.md.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# Browser tests drive Debian's Chromium (apt package chromium); Playwright's download is not used.
CHROMIUM := /usr/bin/chromium
# Fixed test-only values; production reads real ones from the environment.
TEST_ENV := SECRET_KEY=test-only-secret-key-never-used-in-production-0123456789abcdef \
	ALLOWED_HOSTS=testserver,localhost,127.0.0.1 PORTAL_TLS=0 PORTAL_CACHE_PREFIX=portal-test \
	PORTAL_VAR_DIR=$(CURDIR)/var/test \
	PORTAL_RECORDING_SIGNING_KEY=dGVzdC1vbmx5LXNpZ25pbmcta2V5LW5ldmVyLXVzZWQ= \
	PORTAL_RECORDING_MASTER_KEY=dGVzdC1vbmx5LW1hc3Rlci1rZXktbmV2ZXItdXNlZCE= \
	PORTAL_AUDIT_SIGNING_KEY=dGVzdC1vbmx5LWF1ZGl0LWhlYWQtc2lnbmluZy1rZXk=

.PHONY: run test bench install messages lock lint

run: install messages
	PORTAL_DEBUG=1 $(PY) manage.py migrate --no-input
	PORTAL_DEBUG=1 $(PY) manage.py demo
	PORTAL_DEBUG=1 $(PY) manage.py serve

test: install messages
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks print figures; they are not tests.
bench: install
	$(TEST_ENV) $(PY) bench/audit_chain.py
	$(TEST_ENV) $(PY) bench/key_redemption.py
	$(TEST_ENV) $(PY) bench/relay.py
	$(TEST_ENV) $(PY) bench/recording.py

install: $(INSTALLED)

$(INSTALLED): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	@command -v msgfmt >/dev/null || (apt-get update -qq && apt-get install -y -qq gettext)
	@test -x $(CHROMIUM) || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	touch $@

messages: install
	env -u DJANGO_SETTINGS_MODULE $(VENV)/bin/django-admin compilemessages --ignore=.venv --ignore=var -v0

# Maintainers: re-pin every dependency after editing pyproject.toml.
lock: install
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--generate-hashes -o requirements.lock

lint: install
	$(VENV)/bin/ruff check .
