"""Fixtures of the document tests, loaded with `pytest_plugins = ["tests.documents_fixtures"]`: an
S3-protocol server on loopback (moto's, reached through the minio SDK as production reaches MinIO) and
object stores on it or on a temporary directory."""
from __future__ import annotations

import logging

import pytest

from storage.objects import LocalStore
from tests.documents_support import free_port, s3_store


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)     # one access-log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def any_store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    return s3_store(request.getfixturevalue("moto_endpoint"))


@pytest.fixture
def local_store(tmp_path):
    return LocalStore(tmp_path / "objects")
