"""Fixtures shared by the engine tests (images, containers, volumes): a real Engine on ext4 and
real images built by tests/imagefactory.py."""

import os

import pytest

from runtime.engine import Engine
from tests import imagefactory


def _instantiable(cls):
    """cls, or while some backend methods are still unwritten, a subclass whose missing
    abstract methods raise NotImplementedError (so each part can be tested on its own)."""
    missing = getattr(cls, "__abstractmethods__", ())
    if not missing:
        return cls

    def stub(name):
        def method(self, *a, **kw):
            raise NotImplementedError(name)
        return method

    return type(cls.__name__, (cls,), {name: stub(name) for name in missing})


def make_engine(data_root, config=None):
    """A runtime.engine.Engine over data_root (must be on ext4/xfs, not overlay: /tmp is ext4)."""
    os.makedirs(data_root, exist_ok=True)
    return _instantiable(Engine)(data_root=str(data_root), config=config)


@pytest.fixture
def engine(tmp_path):
    """A fresh engine whose data root is under this test's tmp dir."""
    return make_engine(tmp_path / "root")


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory):
    """Path of a docker-save tarball holding busybox:latest (busybox-static, CMD ["sh"])."""
    return imagefactory.busybox_image_tar(tmp_path_factory.mktemp("images") / "busybox.tar")


@pytest.fixture
def busybox_image(engine, busybox_tar):
    """Load busybox:latest into the engine; returns the reference "busybox:latest"."""
    with open(busybox_tar, "rb") as f:
        engine.image_load(f)
    return "busybox:latest"
