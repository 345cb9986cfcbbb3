"""Real PostgreSQL and Mosquitto servers for the tests, never mocks.

`.ci/run` starts both on 127.0.0.1 and names them in ``FIREWATCH_TEST_POSTGRES_URL`` and
``FIREWATCH_TEST_MQTT_URL``. Without those, the session starts its own, on free ports in a
temporary folder, and stops them at the end; tests that need a server are skipped (with
the reason) only when its binaries are not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

POSTGRES_ENV = "FIREWATCH_TEST_POSTGRES_URL"
MQTT_ENV = "FIREWATCH_TEST_MQTT_URL"
_PG_USER = "firewatch"
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class MqttBroker:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float = _START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s")
            time.sleep(0.1)


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl live: on PATH, or Debian's versioned folder (newest)."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return candidates[-1].parent if candidates else None


def _as_postgres_user(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the Debian package's "postgres" account will do.
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


class PostgresCluster:
    """A throwaway cluster on a free port that a test may stop and start again (an outage)."""

    def __init__(self, root: Path, bindir: Path) -> None:
        self.bindir, self.data, self.sockets, self.log = bindir, root / "data", root / "run", root / "server.log"
        self.port = free_port()

    @property
    def url(self) -> str:
        """Its admin URL (database ``postgres``)."""
        return f"postgresql+psycopg://{_PG_USER}@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        subprocess.run(_as_postgres_user([str(self.bindir / "initdb"), "-D", str(self.data), "-U", _PG_USER,
                                          "--auth=trust", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_postgres_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                                          "-o", options, "-w", "start"]),
                       check=True, capture_output=True)

    def running(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session (clients see their connection drop), ``immediate`` too,
        without a clean shutdown."""
        subprocess.run(_as_postgres_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode,
                                          "-w", "stop"]), capture_output=True)


@contextmanager
def own_postgres_cluster() -> Iterator[PostgresCluster]:
    """A running throwaway cluster, removed at the end."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    root = Path(tempfile.mkdtemp(prefix="firewatch-pg-"))
    cluster = PostgresCluster(root, bindir)
    cluster.sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(cluster.sockets, "postgres")
    try:
        cluster.init()
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def create_database(admin_url: str, password: str | None = None) -> str:
    """A new, empty database on the server of ``admin_url``; its URL (with ``password`` in it,
    which trust authentication ignores: for tests that check it is never logged)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"fw_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    url = make_url(admin_url).set(database=name)
    return (url.set(password=password) if password else url).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL of the test module's own, which its tests may stop and start (an outage)."""
    with own_postgres_cluster() as cluster:
        yield cluster


def migrated_database(cluster: PostgresCluster, password: str | None = None) -> str:
    """A new database on ``cluster``, migrated; the cluster is started first if a test that
    failed left it stopped."""
    from storage import upgrade

    if not cluster.running():
        cluster.start()
    url = create_database(cluster.url, password)
    upgrade(url)
    return url


@contextmanager
def own_postgres() -> Iterator[str]:
    """A throwaway cluster on a free port; yields its admin URL (database ``postgres``)."""
    with own_postgres_cluster() as cluster:
        yield cluster.url


@contextmanager
def own_mosquitto() -> Iterator[MqttBroker]:
    """A broker on a free loopback port, anonymous, in the background."""
    binary = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto",) if Path(p).is_file()), None)
    if binary is None:
        pytest.skip("Mosquitto is not installed (apt-get install -y mosquitto)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="firewatch-mqtt-") as root:
        conf = Path(root) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        os.chmod(root, 0o755)
        conf.chmod(0o644)
        server = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            wait_for_port("127.0.0.1", port)
            yield MqttBroker("127.0.0.1", port)
        finally:
            server.terminate()
            server.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The admin URL of a running PostgreSQL: CI's (from the environment) or our own."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        yield url
        return
    with own_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[MqttBroker]:
    """A running Mosquitto: CI's (from the environment) or our own."""
    url = os.environ.get(MQTT_ENV)
    if url:
        parts = urlsplit(url)
        yield MqttBroker(parts.hostname or "127.0.0.1", parts.port or 1883)
        return
    with own_mosquitto() as broker:
        yield broker


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"fw_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
        drop_database(admin, name)
    finally:
        admin.dispose()


def drop_database(admin: Engine, name: str, tries: int = 5) -> None:
    """Drop ``name`` as a role without superuser rights, as CI's is.

    ``WITH (FORCE)`` needs the right to end every session on the database, and an
    autovacuum worker (started by a test's bulk delete) is not ours to end: it refuses the
    whole drop. So our own leftover sessions are ended by hand, and a plain ``DROP
    DATABASE``, which asks autovacuum to step aside, is retried while one lingers.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    for attempt in range(tries):
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND usename = current_user "
                              "AND pid <> pg_backend_pid()"), {"name": name})
            try:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                return
            except OperationalError:  # "is being accessed by other users"
                if attempt == tries - 1:
                    raise
        time.sleep(0.5)
