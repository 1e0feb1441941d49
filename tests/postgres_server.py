"""A throwaway PostgreSQL server in a temporary folder, for the store tests (stdlib only).

``python3 tests/postgres_server.py start`` prints ``export NEUROSYM_TEST_POSTGRES=<url>`` and
``export NEUROSYM_TEST_POSTGRES_DIR=<folder>`` lines for a shell to ``eval``; ``stop FOLDER`` stops the
server and removes the folder. ``.ci/run`` does that around the test command; ``tests/kg/conftest.py``
starts its own when the variable is absent and ``initdb`` is installed. PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` user (or ``nobody``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def find_bin(name: str) -> str | None:
    """The PostgreSQL program ``name`` on PATH or in the Debian layout (/usr/lib/postgresql/N/bin)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


def _run(args: list[str], user: str | None) -> None:
    if user is not None:
        args = ["runuser", "-u", user, "--", *args]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(folder: str | Path | None = None) -> tuple[str, Path]:
    """Start a server; returns (SQLAlchemy URL of its ``postgres`` database, its folder)."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError("PostgreSQL's initdb/pg_ctl are not installed")
    root = Path(folder or tempfile.mkdtemp(prefix="neurosym-pg-"))
    data = root / "data"
    user = _server_user()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    _run([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"], user)
    port = _free_port()
    # Durability settings off: the tests kill clients, never the server, and want speed.
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    _run([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "-t", "60", "start"], user)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", root


def stop(folder: str | Path) -> None:
    """Stop the server in ``folder`` (immediately) and remove the folder."""
    root = Path(folder)
    pg_ctl = find_bin("pg_ctl")
    if pg_ctl and (root / "data").exists():
        try:
            _run([pg_ctl, "-D", str(root / "data"), "-m", "immediate", "-w", "stop"], _server_user())
        except subprocess.CalledProcessError:
            pass
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["start"]:
        url, root = start()
        print(f"export NEUROSYM_TEST_POSTGRES={url}\nexport NEUROSYM_TEST_POSTGRES_DIR={root}")
    elif sys.argv[1:2] == ["stop"] and len(sys.argv) == 3:
        stop(sys.argv[2])
    else:
        sys.exit("usage: postgres_server.py start | stop FOLDER")
