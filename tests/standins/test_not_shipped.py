"""The stand-ins are development tools: the wheel leaves them out, and an app
asked to run them where they are not installed refuses to start."""
from __future__ import annotations

import sys
import tomllib

import pytest
from setuptools import find_namespace_packages

from marketplace.config import ROOT
from tests.conftest import make_app


def test_the_wheel_ships_the_app_and_not_the_stand_ins():
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = set(find_namespace_packages(where=str(ROOT), include=find["include"], exclude=find["exclude"]))
    assert {"marketplace", "marketplace.scheduling", "marketplace.payments", "jobs", "templates.email"} <= packages
    assert not {name for name in packages if name.startswith("marketplace.standins")}


def test_an_app_told_to_run_stand_ins_that_are_not_installed_refuses_to_start(database_url, monkeypatch):
    monkeypatch.setitem(sys.modules, "marketplace.standins.views", None)  # as in an installed wheel
    with pytest.raises(RuntimeError, match="not installed"):
        make_app(database_url, STANDINS={"mail": "http://localhost/dev/mail"})
