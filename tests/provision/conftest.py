"""Lab fixtures for provision tests: one lab per session, hosts booted per module."""

import os

import pytest


@pytest.fixture(scope="session")
def plab():
    """A lab of throwaway hosts (systemd-nspawn) for the provision tests; removed at the end."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    from tests.lab import Lab

    lab = Lab()
    yield lab
    lab.down()
