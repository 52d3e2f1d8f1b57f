"""A PostgreSQL server of one test's own, that the test can stop and start again on the same data
directory and port (the session's shared cluster must not go away under other tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.net import free_port
from tests.support.postgres import _bindir


class RestartablePostgres:
    def __init__(self, directory: str, port: int, prefix: list[str]) -> None:
        self.directory = directory
        self.port = port
        self._pg_ctl = [*prefix, os.path.join(_bindir(), "pg_ctl"), "-D", os.path.join(directory, "data")]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        log = os.path.join(self.directory, "pg.log")
        subprocess.run(
            [*self._pg_ctl, "-l", log, "-w", "-o", options, "start"], check=True, capture_output=True
        )

    def stop(self) -> None:
        """Stop as an operator restarting it would: `fast` ends every session and rolls back open
        transactions."""
        subprocess.run([*self._pg_ctl, "-m", "fast", "-w", "stop"], check=True, capture_output=True)


@contextmanager
def restartable_postgres() -> Iterator[RestartablePostgres]:
    """A fresh cluster, started; removed afterwards."""
    as_root = os.geteuid() == 0
    prefix = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"] if as_root else []
    directory = tempfile.mkdtemp(prefix="feedgate-pg-restart-")
    if as_root:
        shutil.chown(directory, "postgres", "postgres")
    initdb = [os.path.join(_bindir(), "initdb"), "-D", os.path.join(directory, "data"), "-U", "postgres"]
    server = RestartablePostgres(directory, free_port(), prefix)
    try:
        subprocess.run(
            [*prefix, *initdb, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True,
            capture_output=True,
        )
        server.start()
        yield server
    finally:
        subprocess.run([*server._pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)
