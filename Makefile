# The two commands: `make run` (the whole portal with demo data) and `make test` (every test).
# Each installs what it needs. See README.md.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Production installs requirements.lock only; tests and tools also requirements-dev.lock.
INSTALLED := $(VENV)/.installed
INSTALLED_DEV := $(VENV)/.installed-dev
# Browser tests drive Debian's Chromium (apt package chromium); Playwright's download is not used.
CHROMIUM := /usr/bin/chromium
# Fixed test-only values; production reads real ones from the environment.
TEST_ENV := SECRET_KEY=test-only-secret-key-never-used-in-production-0123456789abcdef \
	ALLOWED_HOSTS=testserver,localhost,127.0.0.1 PORTAL_TLS=0 PORTAL_CACHE_PREFIX=portal-test \
	PORTAL_VAR_DIR=$(CURDIR)/var/test \
	PORTAL_RECORDING_SIGNING_KEY=dGVzdC1vbmx5LXNpZ25pbmcta2V5LW5ldmVyLXVzZWQ= \
	PORTAL_RECORDING_MASTER_KEY=dGVzdC1vbmx5LW1hc3Rlci1rZXktbmV2ZXItdXNlZCE= \
	PORTAL_AUDIT_SIGNING_KEY=dGVzdC1vbmx5LWF1ZGl0LWhlYWQtc2lnbmluZy1rZXk=

.PHONY: run test bench install install-dev messages lock lint migrations-check

run: install messages
	PORTAL_DEBUG=1 $(PY) manage.py migrate --no-input
	PORTAL_DEBUG=1 $(PY) manage.py demo
	PORTAL_DEBUG=1 $(PY) manage.py serve

test: install-dev messages
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks print figures; they are not tests.
bench: install-dev
	$(TEST_ENV) $(PY) bench/audit_chain.py
	$(TEST_ENV) $(PY) bench/key_redemption.py
	$(TEST_ENV) $(PY) bench/relay.py
	$(TEST_ENV) $(PY) bench/recording.py

install: $(INSTALLED)

$(INSTALLED): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	@command -v msgfmt >/dev/null || (apt-get update -qq && apt-get install -y -qq gettext)
	touch $@

# The development lock pins the production packages to the same versions and hashes, plus the
# dev extra (pytest, Playwright, ruff, ...).
install-dev: $(INSTALLED_DEV)

$(INSTALLED_DEV): requirements.lock requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock \
		-r requirements-dev.lock
	@command -v msgfmt >/dev/null || (apt-get update -qq && apt-get install -y -qq gettext)
	@test -x $(CHROMIUM) || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	touch $(INSTALLED) $@

messages: install
	env -u DJANGO_SETTINGS_MODULE $(VENV)/bin/django-admin compilemessages --ignore=.venv --ignore=var -v0

# Maintainers: re-pin every dependency after editing pyproject.toml. The development lock is
# constrained by the production one, so both pin every shared package identically.
lock: install
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 \
		--generate-hashes -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev -c requirements.lock \
		--python-version 3.11 --generate-hashes -o requirements-dev.lock

lint: install-dev
	$(VENV)/bin/ruff check .

# Fails when a model change has no migration.
migrations-check: install
	env -u DATABASE_URL -u REDIS_URL $(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
