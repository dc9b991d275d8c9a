"""Logging to `.localcode/logs/localcode.log` and stderr.

Policy: document text and prompts are logged only at DEBUG; INFO carries events and sizes.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

LOGGER_NAME = "localcode"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def get_logger(name: str = "") -> logging.Logger:
    """A child of the `localcode` logger (`get_logger("index")` -> `localcode.index`)."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def setup_logging(state_dir: Path | None, level: str = "INFO", *, stderr: bool = True,
                  stderr_level: str = "WARNING") -> Path | None:
    """Attach a rotating file handler under `state_dir/logs` and a stderr handler.

    Returns the log file path (None when the directory cannot be written; logging then goes to
    stderr only). Safe to call more than once: earlier localcode handlers are replaced.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(getattr(logging, level.upper(), logging.INFO))
    logger.propagate = False
    for handler in list(logger.handlers):
        if getattr(handler, "_localcode", False):
            logger.removeHandler(handler)
            handler.close()
    log_file: Path | None = None
    if state_dir is not None:
        try:
            (state_dir / "logs").mkdir(parents=True, exist_ok=True)
            log_file = state_dir / "logs" / "localcode.log"
            file_handler = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
            )
            file_handler.setFormatter(logging.Formatter(_FORMAT))
            file_handler._localcode = True  # type: ignore[attr-defined]
            logger.addHandler(file_handler)
        except OSError:
            log_file = None
    if stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(getattr(logging, stderr_level.upper(), logging.WARNING))
        stream.setFormatter(logging.Formatter("localcode: %(levelname)s: %(message)s"))
        stream._localcode = True  # type: ignore[attr-defined]
        logger.addHandler(stream)
    return log_file
