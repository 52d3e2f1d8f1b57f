"""A throwaway PostgreSQL cluster for the test session (runs the server as `postgres` when root)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.net import free_port


def _bindir() -> str:
    if os.environ.get("PG_BIN"):
        return os.environ["PG_BIN"]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    initdb = found[-1] if found else shutil.which("initdb")
    if not initdb:
        raise RuntimeError("PostgreSQL server binaries not found; install postgresql (see .ci/setup)")
    return os.path.dirname(initdb)


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a cluster in a temp dir on a free port; yield its `postgresql+psycopg://` URL."""
    bindir = _bindir()
    as_root = os.geteuid() == 0
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    prefix = [runuser, "-u", "postgres", "--"] if as_root else []
    # Not pytest's tmp_path: its root-owned 0700 parent keeps the `postgres` user out.
    directory = tempfile.mkdtemp(prefix="feedgate-pg-")
    if as_root:
        shutil.chown(directory, "postgres", "postgres")
    data, port = os.path.join(directory, "data"), free_port()
    pg_ctl = [*prefix, os.path.join(bindir, "pg_ctl"), "-D", data]
    try:
        subprocess.run(
            [
                *prefix,
                os.path.join(bindir, "initdb"),
                "-D",
                data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            [*pg_ctl, "-l", os.path.join(directory, "pg.log"), "-w", "-o", options, "start"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)
