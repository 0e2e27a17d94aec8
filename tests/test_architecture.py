"""The apps depend in one direction (docs/architecture.md): an app imports only those below it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each app, and the apps it may import. audit is at the bottom and imports no other app.
ALLOWED = {
    "audit": set(),
    "portal": {"audit"},
    "sessions_app": {"audit", "portal"},
    "consent": {"audit", "portal", "sessions_app"},
    "recordings": {"audit", "portal", "sessions_app"},
    "live": {"audit", "portal", "sessions_app", "consent", "recordings"},
}
# portal's URL and routing files put the apps together; they alone may name every app.
COMPOSITION = {"portal/urls.py", "portal/routing.py"}


def imported_apps(path: Path) -> set[str]:
    """The project apps a module imports, at any depth of the file (functions included)."""
    apps = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        apps.update(name.split(".")[0] for name in names if name.split(".")[0] in ALLOWED)
    return apps


def modules_of(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def test_every_app_imports_only_the_apps_below_it():
    wrong = []
    for app, allowed in ALLOWED.items():
        for path in modules_of(app):
            relative = path.relative_to(ROOT).as_posix()
            if relative in COMPOSITION:
                continue
            for other in sorted(imported_apps(path) - allowed - {app}):
                wrong.append(f"{relative} imports {other}")
    assert wrong == []


def test_the_graph_has_no_cycle_and_matches_the_document():
    document = (ROOT / "docs" / "architecture.md").read_text()
    for app, allowed in ALLOWED.items():
        for below in allowed:
            assert app not in ALLOWED[below], f"{app} and {below} may import each other"
        assert f"`{app}`" in document, f"docs/architecture.md does not name {app}"


def test_the_check_sees_a_wrong_import(tmp_path):
    """The scan itself: an import of an app above, even inside a function, is found."""
    module = tmp_path / "example.py"
    module.write_text("def f():\n    from consent.models import ConsentAcceptance\n")
    assert imported_apps(module) == {"consent"}
