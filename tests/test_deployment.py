"""Deployment guards: `check --deploy` and daphne's start warn without trusted proxies."""

import subprocess
import sys

from tests.processes import ROOT, child_env
from tests.test_settings import PRODUCTION, run


def test_check_deploy_warns_without_trusted_proxies(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "PORTAL_TRUSTED_PROXIES"}
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)
    assert result.returncode != 0
    assert "portal.W001" in result.stdout + result.stderr
    assert "PORTAL_TRUSTED_PROXIES" in result.stdout + result.stderr


def test_daphne_s_application_warns_at_start_without_trusted_proxies(transactional_db):
    env = child_env(PORTAL_DEBUG="0")
    env.pop("PORTAL_TRUSTED_PROXIES", None)
    result = subprocess.run([sys.executable, "-c", "import portal.asgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "portal.security" in result.stderr
    assert "PORTAL_TRUSTED_PROXIES is not set" in result.stderr


def test_with_trusted_proxies_daphne_starts_without_the_warning(transactional_db):
    env = child_env(PORTAL_DEBUG="0", PORTAL_TRUSTED_PROXIES="10.0.0.0/24")
    result = subprocess.run([sys.executable, "-c", "import portal.asgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "PORTAL_TRUSTED_PROXIES" not in result.stderr
