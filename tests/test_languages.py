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
