"""An S3 server on loopback (moto in server mode) holding the benchmark's files.

It runs in the harness process, so its memory never counts in a workload's peak RSS.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

BUCKET = "annscale-bench"
CREDENTIALS = {"key": "testing", "secret": "testing"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(files: dict[str, Path]) -> Iterator[dict]:
    """Start moto on 127.0.0.1, upload ``files`` (object name -> local path), yield access info.

    Yields ``{"endpoint_url", "storage_options", "urls": {name: "s3://bucket/name"}}``; the
    server stops when the block exits.
    """
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log on the terminal
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        # no region: moto refuses a location constraint for us-east-1 when creating the bucket
        storage_options = {**CREDENTIALS, "client_kwargs": {"endpoint_url": endpoint}}
        fs = s3fs.S3FileSystem(**storage_options)
        fs.mkdir(BUCKET)
        urls = {}
        for name, path in files.items():
            url = f"s3://{BUCKET}/{name}"
            fs.put_file(str(path), url)
            urls[name] = url
        yield {"endpoint_url": endpoint, "storage_options": storage_options, "urls": urls}
    finally:
        server.stop()
