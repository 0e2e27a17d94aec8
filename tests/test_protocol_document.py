"""docs/protocol.md against the relay's code: numbers a client relies on, written once in code
and once in the document, must agree (the close codes and the header: tests/test_live.py)."""

import re
from pathlib import Path

from live import consumers
from sessions_app import protocol

DOC = Path(__file__).resolve().parent.parent / "docs/protocol.md"


def test_the_documented_input_grace_window_is_the_relays():
    text = " ".join(DOC.read_text().split())  # paragraphs are wrapped anywhere
    documented = re.search(r"within \*\*(\d+(?:\.\d+)?) seconds\*\* \(`INPUT_RACE_SECONDS`\)",
                           text)
    assert documented, "docs/protocol.md does not state the grace window for staff input"
    assert float(documented.group(1)) == consumers.INPUT_RACE_SECONDS
    # What a staff client sees inside the window, and after it.
    assert '`error` code 0 and reason "input dropped"' in text
    assert f"closes the socket with {protocol.CLOSE_NOT_ALLOWED} (`CLOSE_NOT_ALLOWED`)" in text


def test_the_protocol_module_needs_no_django():
    """recordings/video.py and the support program import it without Django's settings."""
    import subprocess
    import sys

    root = DOC.parent.parent
    code = ("import sys; import sessions_app.protocol as p; "
            "assert p.HEADER.size == 28; "
            "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')]")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True)


def test_the_sign_in_close_code_is_the_same_on_every_staff_socket():
    from portal.staff_access import CLOSE_NOT_VERIFIED

    assert protocol.CLOSE_NOT_VERIFIED == CLOSE_NOT_VERIFIED == 4401
