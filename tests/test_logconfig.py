"""Logging (issue 23): dictConfig, text or JSON, the request id or the RQ job
id on every record, and never a token link — access-log lines included."""
from __future__ import annotations

import json
import logging

import pytest

from marketplace.logconfig import configure_logging, logging_dict, redact


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_token_paths_are_redacted_and_other_paths_kept():
    line = '127.0.0.1 - "GET /verify/eyJ1Ijo0fQ.ZzX-a_b?next=/x HTTP/1.1" 302 and /reset/abc.def, /items/12'
    assert redact(line) == '127.0.0.1 - "GET /verify/[redacted]?next=/x HTTP/1.1" 302 and /reset/[redacted], /items/12'
    assert redact("https://c.example/invitations/tok123 sent") == "https://c.example/invitations/[redacted] sent"


def test_json_lines_carry_the_request_id_and_no_token_link(app, capsys, restore_logging):
    configure_logging({"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})
    with app.test_request_context("/"):
        from flask import g

        g.request_id = "req-42"
        logging.getLogger("marketplace.test").info("reset link %s", "http://x/reset/secret.token")
    logging.getLogger("gunicorn.access").info('"GET /verify/secret.token HTTP/1.1" 302')
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["message"] == "reset link http://x/reset/[redacted]"
    assert (lines[0]["request_id"], lines[0]["job_id"], lines[0]["level"]) == ("req-42", "-", "INFO")
    assert lines[1]["message"] == '"GET /verify/[redacted] HTTP/1.1" 302' and lines[1]["request_id"] == "-"


def test_text_lines_carry_the_rq_job_id_inside_a_job(capsys, restore_logging, monkeypatch):
    configure_logging({"LOG_FORMAT": "text"})

    class Job:
        id = "job-7f3"

    monkeypatch.setattr("marketplace.logconfig.get_current_job", lambda: Job())
    logging.getLogger("jobs.notifications").warning("sent %d", 3)
    out = capsys.readouterr().out
    assert "WARNING jobs.notifications [req=- job=job-7f3] sent 3" in out


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT must be text or json"):
        logging_dict({"LOG_FORMAT": "xml"})
