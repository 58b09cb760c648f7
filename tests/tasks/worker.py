"""`python -m tests.tasks.worker QUEUES`: a real Celery worker running the test-only task kinds."""

import sys

from gateway.cli import run_worker
from gateway.logging import configure_logging
from gateway.settings import load_settings
from tests.tasks.kinds import test_kinds

if __name__ == "__main__":
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    run_worker(settings, sys.argv[1].split(","), 1, test_kinds)
