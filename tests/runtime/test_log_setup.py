"""Envoy-style log lines and `--log-level` names."""

from __future__ import annotations

import io
import logging
import re

import pytest
from meshcore.lifecycle import log_setup


@pytest.fixture
def restore_logging():
    logger = logging.getLogger("meshcore")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_line_format(restore_logging):
    stream = io.StringIO()
    log_setup.configure("debug", stream)
    logging.getLogger("meshcore.app").info("live on %d", 10000)
    logging.getLogger("meshcore.admin.server").warning("slow")
    logging.getLogger("meshcore.discovery.strict_dns").debug("resolved")
    lines = stream.getvalue().splitlines()
    stamp = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]\[\d+\]"
    assert re.fullmatch(stamp + r"\[info\]\[main\] live on 10000", lines[0])
    assert re.fullmatch(stamp + r"\[warning\]\[admin\] slow", lines[1])
    assert re.fullmatch(stamp + r"\[debug\]\[upstream\] resolved", lines[2])


def test_levels(restore_logging):
    stream = io.StringIO()
    log_setup.configure("warning", stream)
    logging.getLogger("meshcore.app").info("hidden")
    assert stream.getvalue() == ""
    assert log_setup.current_level() == "warning"
    log_setup.set_level("trace")
    logging.getLogger("meshcore.app").log(log_setup.TRACE, "very detailed")
    assert "[trace][main] very detailed" in stream.getvalue()
    log_setup.set_level("off")
    logging.getLogger("meshcore.app").critical("silenced")
    assert "silenced" not in stream.getvalue()
    assert log_setup.current_level() == "off"
    with pytest.raises(ValueError, match="unknown log level 'verbose'"):
        log_setup.level_value("verbose")
