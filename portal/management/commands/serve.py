"""Run the whole portal: daphne (HTTP + WebSockets), a Celery worker and Celery beat.

All three are real processes; Ctrl+C (or SIGTERM) stops them together, and if one of them
dies the others are stopped too. In production, run them separately (see README.md).
"""

from __future__ import annotations

import ipaddress
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

STOP_GRACE_SECONDS = 15


class Command(BaseCommand):
    help = "Run daphne, a Celery worker and Celery beat together; Ctrl+C stops all three."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")

    def handle(self, *args, host: str, port: int, concurrency: int, **options):
        if settings.DEBUG and not _is_loopback(host):
            raise CommandError("With PORTAL_DEBUG on, the portal only listens on loopback.")
        python = sys.executable
        commands = {
            "daphne": [
                python,
                "-m",
                "daphne",
                "-b",
                host,
                "-p",
                str(port),
                "portal.asgi:application",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                "--hostname=worker@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "portal",
                "beat",
                "--loglevel=INFO",
                f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}",
            ],
        }
        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

        # Own sessions, so that Ctrl+C reaches only us and we stop the children in order.
        processes = {
            name: subprocess.Popen(command, start_new_session=True)
            for name, command in commands.items()
        }
        shown_host = f"[{host}]" if ":" in host else host
        self.stdout.write(
            self.style.SUCCESS(
                f"Fernwartung Portal on http://{shown_host}:{port}/ "
                f"(staff: /staff/, admin: /admin/, health: /healthz). Ctrl+C stops everything."
            )
        )
        exit_code = 0
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with code {process.returncode}; stopping.")
                    exit_code = 1
                    stopping = True
            time.sleep(0.3)

        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.stdout.write("Stopped daphne, the Celery worker and Celery beat.")
        if exit_code:
            sys.exit(exit_code)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
