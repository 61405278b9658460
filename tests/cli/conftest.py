"""Shared helpers for the CLI tests: an isolated working folder and file listings."""

import os

import pytest
from typer.testing import CliRunner


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty current folder (the default output goes to ./gradwise-out)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def listing():
    """Every path under a folder, relative, sorted (to prove nothing was written)."""

    def _listing(root):
        return sorted(os.path.relpath(os.path.join(d, f), root) for d, ds, fs in os.walk(root) for f in ds + fs)

    return _listing
