"""Fixtures for the DSE tests: small sweep files; fake evaluators live in dse_fakes.py."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# Worker processes (forkserver/spawn, Dask) import the fake evaluators by module name.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from dse_fakes import FAKE_SWEEP  # noqa: E402


@pytest.fixture
def fake_sweep_file(tmp_path):
    path = tmp_path / "fake.yaml"
    path.write_text(FAKE_SWEEP)
    return path
