"""Real-browser tests: the portal in a real daphne process, driven by Debian's Chromium.

Registered as a plugin in ``tests/conftest.py``, so every test can ask for these fixtures:

``live_portal``
    a daphne process serving the portal on a free port of 127.0.0.1, on the test database
    (``transactional_db``); ``live_portal.url`` is its base URL, ``live_portal("/staff/")``
    a full URL.
``playwright``, ``browser``, ``browser_context``, ``page``
    Playwright's sync API with ``/usr/bin/chromium`` (the Makefile installs it); a new
    context, and so new cookies, for every test.

and import the helpers ``wait_for(page, expression)`` (Playwright's ``wait_for_function``
compiles its predicate in the page, which the Content-Security-Policy forbids; this polls
through ``page.evaluate``, which it does not), ``axe_violations(page)`` (axe-core's serious
and critical findings on the current page), ``live_password(user)`` (a password the portal's
processes can check) and ``in_sync_thread(function, *args)`` (for code that uses
``async_to_sync``, see below)::

    import pytest
    from tests.browser import axe_violations

    pytestmark = pytest.mark.browser

    def test_the_sign_in_page(live_portal, page):
        page.goto(live_portal("/staff/login/"))
        assert page.locator("h1").inner_text() == "Anmeldung für Mitarbeitende"
        assert axe_violations(page) == []

Browser tests are plain (sync) test functions, marked ``browser``. While Playwright runs, the
test may use the ORM as usual, on its own connection; code that calls ``async_to_sync`` (the
session actions' channel-layer messages) must go through ``in_sync_thread``, since Playwright's
event loop counts as running in the test's thread. The pages come from the daphne process,
which sees only committed data: ``live_portal`` makes the test transactional.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

import pytest
from django.contrib.auth.hashers import make_password

from tests.personas import PASSWORD
from tests.processes import child_env, free_port, http_status, start, stop, wait_until

CHROMIUM = "/usr/bin/chromium"  # Debian's package `chromium`; `make install` installs it
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--auto-accept-this-tab-capture",
]
# Long enough for a cold first request to daphne, short enough to fail before the suite hangs.
TIMEOUT_MS = 15_000
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
T = TypeVar("T")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, so that the fixtures can tell a failed test."""
    report = yield
    setattr(item, f"_browser_report_{report.when}", report)
    return report


def _failed(request) -> bool:
    return any(
        getattr(getattr(request.node, f"_browser_report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


@dataclass(frozen=True)
class LivePortal:
    url: str
    process: subprocess.Popen
    log: Path

    def __call__(self, path: str = "/") -> str:
        return self.url + path


@pytest.fixture
def live_portal(request, tmp_path, transactional_db) -> Iterator[LivePortal]:
    """The portal served by one real daphne process on a free port, on the test database.

    Only daphne runs: no Celery worker or beat (see ``tests/test_serve.py`` for those). Its
    settings are this test run's (the Makefile's TEST_ENV), with debug off; WhiteNoise serves
    the static files from the apps' folders (WHITENOISE_USE_FINDERS), no collectstatic needed.
    The process knows only the production password hashers: see ``live_password``.
    """
    port = free_port()
    env = child_env()
    # The server never runs with Django's async-safety checks switched off (see `playwright`).
    env.pop(ASYNC_UNSAFE, None)
    log = tmp_path / "daphne.log"
    process = start(
        ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"], env, log
    )
    portal = LivePortal(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        wait_until(
            lambda: process.poll() is not None or http_status(portal("/healthz")) == 200,
            timeout=60, what="daphne to answer 200 on /healthz", log=log,
        )
        if process.poll() is not None:
            raise AssertionError(f"daphne exited with {process.returncode}\n{log.read_text()}")
        yield portal
    finally:
        failed = _failed(request)
        try:
            stop(process)
        except subprocess.TimeoutExpired:
            # Killed: a request hung (the test's own failure says more), or shutdown is broken.
            if not failed:
                raise
            print("--- daphne did not stop on SIGTERM in time and was killed")
        finally:
            if failed:
                print(f"--- daphne's log ({log}), last lines:\n{log.read_text()[-4000:]}")


def live_password(user, password: str = PASSWORD) -> str:
    """Give ``user`` a password hashed the way the portal's processes can check it.

    The test process hashes with MD5 for speed (conftest), which the processes do not know.
    """
    user.password = make_password(password, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])
    return password


@pytest.fixture
def playwright():
    """Playwright's sync API, started for one test and stopped after it.

    The sync API runs its own asyncio loop in a greenlet of this thread and marks it as the
    thread's running loop between calls, so Django takes this thread for an async one:

    * It would refuse every ORM call of the test and of its fixtures' teardown
      (SynchronousOnlyOperation), although they are synchronous calls in this thread. So
      DJANGO_ALLOW_ASYNC_UNSAFE is set in this process exactly as long as Playwright runs,
      never in the daphne process (``live_portal`` drops it).
    * It would keep database connections per context rather than per thread, and the test
      would get new connections, outside its transaction and never closed. So the test's
      connections are handed on to that view while Playwright runs; any other connection
      opened meanwhile is closed before Playwright stops.
    * ``async_to_sync`` refuses to run here meanwhile: see ``in_sync_thread``. And no other
      loop may run, so Playwright is not kept across tests: pytest-asyncio runs the async
      tests after this one on loops of their own.
    """
    from django.db import connections
    from playwright.sync_api import sync_playwright

    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    own = {alias: connections[alias] for alias in connections}
    try:
        manager = sync_playwright().start()
        try:
            for alias, connection in own.items():
                connections[alias] = connection
            yield manager
        finally:
            try:
                for alias in connections:
                    if connections[alias] is not own[alias]:
                        connections[alias].close()
            finally:
                manager.stop()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.fixture
def browser(playwright):
    """Debian's Chromium, headless."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield chromium
    finally:
        chromium.close()


def csp_violations(context) -> list[str]:
    """Every Content-Security-Policy violation the context's pages report from now on
    (``axe_violations`` drops those of axe's own styled probes)."""
    found: list[str] = []

    def note(message):
        if "Content Security Policy" in message.text:
            found.append(f"{message.location.get('url')}:{message.location.get('lineNumber')}: "
                         f"{message.text}")

    context.on("console", note)
    context.csp_violations = found
    return found


@pytest.fixture
def browser_context(request, browser):
    """A fresh context for each test: no cookies, an English-speaking browser (en-US).

    A test whose pages broke the Content-Security-Policy fails (the page would have lost a
    script, a style or a connection in production too).
    """
    context = browser.new_context(locale="en-US", timezone_id="Europe/Berlin")
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    violations = csp_violations(context)
    try:
        yield context
    finally:
        context.close()
    if not _failed(request):
        assert violations == [], violations


def wait_for(page, expression: str, *, timeout_ms: int = TIMEOUT_MS) -> None:
    """Wait until ``expression`` (or the function it defines) is truthy in the page."""
    import time

    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)


@pytest.fixture
def page(request, tmp_path, browser_context):
    """A page of this test's context; if the test fails, a screenshot is kept in tmp_path."""
    page = browser_context.new_page()
    yield page
    if _failed(request) and not page.is_closed():
        screenshot = tmp_path / "page-at-failure.png"
        try:
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"--- the page at the failure ({page.url}): {screenshot}")
        except Exception as error:  # noqa: BLE001 - the test's own failure matters more
            print(f"--- no screenshot of the page at the failure: {error}")


def in_sync_thread(function: Callable[..., T], /, *args, **kwargs) -> T:
    """Call ``function`` in a thread of its own; return its result or raise its exception.

    For code that cannot run in the test's thread while Playwright runs: anything that calls
    ``async_to_sync`` (such as the channel-layer messages the session actions send on commit)
    refuses a thread with a running event loop. The thread has database connections of its
    own, closed when it ends, so it sees committed data only (``live_portal`` tests are
    transactional anyway).
    """
    from django.db import connections

    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - raised again in the test's thread
            outcome["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=f"in_sync_thread:{function.__name__}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class Violation(NamedTuple):
    """One axe-core rule that failed, with the elements it failed on."""

    id: str
    impact: str
    help: str
    nodes: tuple[str, ...]  # "selector: what axe says is wrong"

    def __repr__(self) -> str:
        nodes = "".join(f"\n    {node}" for node in self.nodes)
        return f"\n  {self.id} ({self.impact}): {self.help}{nodes}"


def axe_violations(
    page, impacts: Iterable[str] = ("serious", "critical"), *, context=None, options=None
) -> list[Violation]:
    """Run axe-core (shipped by axe-playwright-python) on the page as it is now.

    Returns the violations of the given impacts; ``assert axe_violations(page) == []`` prints
    each rule with its selectors and axe's explanation. ``context`` and ``options`` go to
    ``axe.run`` unchanged (e.g. ``options={"runOnly": ["wcag2a", "wcag2aa"]}``).
    """
    from axe_playwright_python.sync_playwright import Axe

    kwargs = {"context": context}
    if options is not None:
        kwargs["options"] = options
    found = getattr(page.context, "csp_violations", [])
    before = len(found)
    response = Axe().run(page, **kwargs).response
    page.wait_for_timeout(100)  # axe's console messages arrive
    del found[before:]  # axe's own probes, not the page's
    wanted = set(impacts)
    return [
        Violation(
            id=violation["id"],
            impact=violation["impact"],
            help=violation["help"],
            nodes=tuple(
                " ".join(str(part) for part in node["target"])
                + ": "
                + (node.get("failureSummary") or "").replace("\n", " ")
                for node in violation["nodes"]
            ),
        )
        for violation in response["violations"]
        if violation["impact"] in wanted
    ]
