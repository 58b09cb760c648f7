"""Collect what an in-process server logs at ERROR, to assert that bad input logs no traceback."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

# uvicorn logs an app's exception here; Strawberry logs execution errors under its own name.
SERVER_LOGGERS = ("uvicorn.error", "strawberry")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """The ERROR records the server's loggers emit inside the block."""
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in SERVER_LOGGERS]
    for logger in loggers:
        logger.addHandler(collector)
    try:
        yield collector.records
    finally:
        for logger in loggers:
            logger.removeHandler(collector)
