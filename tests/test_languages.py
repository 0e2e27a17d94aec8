"""German first, English too: the German catalog has a translation for every text."""

import subprocess
from pathlib import Path

CATALOG = Path(__file__).resolve().parent.parent / "locale/de/LC_MESSAGES/django.po"


def test_every_text_has_a_german_translation():
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(CATALOG)],
        capture_output=True, text=True, check=True,
    )
    statistics = result.stderr.strip()
    assert "translated message" in statistics
    assert "untranslated" not in statistics and "fuzzy" not in statistics, statistics


def test_the_german_catalog_covers_every_text_in_the_code(tmp_path):
    """Extract the texts afresh from a copy of the code: none may be missing from the catalog."""
    import os
    import shutil
    import sys

    root = CATALOG.parents[3]
    copy = tmp_path / "src"
    shutil.copytree(
        root, copy,
        ignore=shutil.ignore_patterns(".venv", "var", ".git", "*.mo", "__pycache__", "staticfiles"),
    )
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "de", "--no-location", "-v0"],
        cwd=copy, check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null",
         str(copy / "locale/de/LC_MESSAGES/django.po")],
        capture_output=True, text=True, check=True,
    )
    statistics = result.stderr.strip()
    assert "untranslated" not in statistics and "fuzzy" not in statistics, (
        f"run `manage.py makemessages -l de -l en --no-location` and translate: {statistics}"
    )
