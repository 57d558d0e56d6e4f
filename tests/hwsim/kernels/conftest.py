"""Fixtures for the kernel tests: the GEMM paths available on this host."""

import pytest

from hwsim.kernels import vnni

PATHS = ["portable"] + (["vnni"] if vnni.vnni_available() else [])


@pytest.fixture(params=PATHS, scope="session")
def path(request):
    """Each GEMM implementation the host can run (both are checked against the reference)."""
    return request.param
