"""The two hash-checked locks: production (`make run`) and development (`make test`)."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Test, browser, lint and fuzzing tools: a production install must not contain them.
DEV_ONLY = {
    "pytest",
    "pytest-django",
    "pytest-asyncio",
    "time-machine",
    "ruff",
    "playwright",
    "axe-playwright-python",
    "websockets",
    "hypothesis",
    "moto",
}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock(filename: str) -> dict[str, tuple[str, frozenset[str]]]:
    """Each pinned package of a lock file: its version and its hashes."""
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    name = None
    for line in (ROOT / filename).read_text().splitlines():
        pinned = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if pinned:
            name = _normalized(pinned[1])
            pins[name] = (pinned[2], frozenset())
            continue
        hashed = re.match(r"^\s+--hash=(sha256:[0-9a-f]{64})", line)
        if hashed and name:
            version, hashes = pins[name]
            pins[name] = (version, hashes | {hashed[1]})
    return pins


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_normalized(re.match(r"[A-Za-z0-9._-]+", r)[0]) for r in requirements}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_a_production_install_contains_no_test_browser_or_lint_tools():
    production = _lock("requirements.lock")

    assert "django" in production
    assert DEV_ONLY.isdisjoint(production), sorted(DEV_ONLY & production.keys())


def test_the_development_lock_holds_the_test_tools():
    assert DEV_ONLY <= _lock("requirements-dev.lock").keys()


def test_every_pin_in_both_locks_is_hash_checked():
    for filename in ("requirements.lock", "requirements-dev.lock"):
        unhashed = [name for name, (_, hashes) in _lock(filename).items() if not hashes]
        assert unhashed == [], filename


def test_the_development_lock_pins_every_production_package_identically():
    production, development = _lock("requirements.lock"), _lock("requirements-dev.lock")

    differing = {
        name: (pin, development.get(name))
        for name, pin in production.items()
        if development.get(name) != pin
    }
    assert differing == {}


def test_the_locks_cover_pyproject():
    project = _pyproject()

    assert _requirement_names(project["dependencies"]) <= _lock("requirements.lock").keys()
    dev = _requirement_names(project["optional-dependencies"]["dev"])
    assert dev <= _lock("requirements-dev.lock").keys()
    assert DEV_ONLY <= dev
