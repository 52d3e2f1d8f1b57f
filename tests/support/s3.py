"""A real S3-protocol server on a loopback port for tests: moto's threaded server (an in-memory S3
that speaks the wire protocol boto3 uses against AWS or MinIO)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

# moto accepts any credentials; these are placeholders, not secrets.
ACCESS_KEY_ID = "feedgate-test"
SECRET_ACCESS_KEY = "feedgate-test-secret"


@contextmanager
def s3_server() -> Iterator[str]:
    """Run an S3 server until the block ends; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
