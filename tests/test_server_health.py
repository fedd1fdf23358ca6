"""/healthz and the engine tell the truth about the database: PostgreSQL cut off, a SQLite
file deleted or replaced, SQL errors without their parameters, SQLite's synchronous=FULL."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import SQLAlchemyError

from bot.domain import Action
from bot.health import DatabaseHealth
from bot.store import Store
from tests.e2e import BOT_TOKEN, AppProcess, app_env
from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner


class TcpProxy:
    """A loopback TCP proxy that can be cut (connections dropped, port refusing) and mended:
    PostgreSQL going away and coming back, without touching the shared server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open = threading.Event()
        self._stop = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._listener.listen()
        self._open.set()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self.cut()
        self._thread.join(timeout=10)
        self._listener.close()

    def cut(self) -> None:
        """Drop every connection and refuse new ones, as a stopped server does."""
        self._open.clear()
        with self._lock:
            for pair in self._pairs:
                for sock in pair:
                    sock.close()
            self._pairs.clear()

    def mend(self) -> None:
        self._open.set()

    def _serve(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            if not self._open.is_set():
                client.close()  # refused, as far as the client can tell
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            client.close()
            upstream.close()


@pytest.fixture
def proxied_postgres(postgres_url: str) -> Iterator[tuple[str, TcpProxy]]:
    url = make_url(postgres_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        yield url.set(port=proxy.port).render_as_string(hide_password=False), proxy


def _wait(condition: object, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_healthz_follows_postgresql_going_away_and_back(
    proxied_postgres: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    """The app on PostgreSQL: 200, 503 while the server is unreachable, 200 once it is back."""
    url, proxy = proxied_postgres
    with FakeSlack(bot_token=BOT_TOKEN) as slack, FakeSMSPartner() as smspartner:
        app = AppProcess(
            env=app_env(slack=slack, smspartner=smspartner, database_url=url), workdir=tmp_path
        ).start()
        try:
            assert app.health() == 200
            proxy.cut()
            _wait(lambda: app.health() == 503, "/healthz stayed 200 with PostgreSQL away")
            proxy.mend()
            _wait(lambda: app.health() == 200, "/healthz stayed 503 with PostgreSQL back")
        finally:
            app.stop()


def test_health_probe_needs_a_write(tmp_path: Path) -> None:
    """A database that answers reads but refuses writes is not healthy (SQLite opened
    read-only here)."""
    path = tmp_path / "ro.db"
    store = Store.from_url(f"sqlite:///{path}")
    store.migrate()
    assert DatabaseHealth(store.engine, cache_seconds=0).healthy()
    store.close()
    read_only = Store.from_url(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with read_only.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM credit_requests")).scalar() == 0
        assert not DatabaseHealth(read_only.engine, cache_seconds=0).healthy()
    finally:
        read_only.close()


def test_health_is_probed_once_per_interval(tmp_path: Path) -> None:
    """Within the cache interval the last answer is reused: a burst of /healthz is one probe."""
    store = Store.from_url(f"sqlite:///{tmp_path / 'c.db'}")
    store.migrate()
    now = [100.0]
    health = DatabaseHealth(store.engine, cache_seconds=1.0, clock=lambda: now[0])
    assert health.healthy()
    store.close()
    (tmp_path / "c.db").unlink()
    assert health.healthy()  # cached
    now[0] += 1.0
    assert not health.healthy()


def _create(store: Store) -> None:
    store.create(
        action=Action.ADD,
        subaccount_token="sub-engine",
        amount=Decimal("1.00"),
        currency="EUR",
        requester_id="UREQ",
        channel_id="CFIN",
        response_url="https://hooks.slack.com/actions/T0/1/secret-response-url",
        ttl_seconds=60,
    )


def test_deleted_sqlite_file_fails_writes_and_is_not_recreated(tmp_path: Path) -> None:
    """After its file is deleted, the store refuses to write (nothing lands in a file nobody
    will read), and no empty database appears in its place."""
    path = tmp_path / "gone.db"
    store = Store.from_url(f"sqlite:///{path}")
    store.migrate()
    _create(store)
    for leftover in tmp_path.glob("gone.db*"):
        leftover.unlink()
    try:
        with pytest.raises(SQLAlchemyError):
            _create(store)
        assert not path.exists()
    finally:
        store.close()


def test_replaced_sqlite_file_is_the_one_used(tmp_path: Path) -> None:
    """The file swapped for another (a restore): connections to the old one are dropped and
    the new file is read."""
    path = tmp_path / "swap.db"
    store = Store.from_url(f"sqlite:///{path}")
    store.migrate()
    _create(store)
    other = Store.from_url(f"sqlite:///{tmp_path / 'restored.db'}")
    other.migrate()
    other.close()
    os.replace(tmp_path / "restored.db", path)
    for wal in tmp_path.glob("swap.db-*"):
        wal.unlink()
    try:
        assert store.recent(limit=10) == []
    finally:
        store.close()


def test_sqlite_runs_with_synchronous_full(tmp_path: Path) -> None:
    """synchronous=FULL (2): a committed claim survives a power cut."""
    store = Store.from_url(f"sqlite:///{tmp_path / 'sync.db'}")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        store.close()


def test_sql_errors_do_not_show_their_parameters(database_url: str) -> None:
    """A failing statement's error text holds no parameter (response_urls are secrets)."""
    store = Store.from_url(database_url)
    store.migrate()
    secret = "https://hooks.slack.com/actions/T0/1/secret-response-url"
    try:
        with pytest.raises(SQLAlchemyError) as failure, store.engine.begin() as conn:
            conn.execute(
                text("SELECT no_such_column FROM credit_requests WHERE id = :p"), {"p": secret}
            )
        assert secret not in str(failure.value)
    finally:
        store.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB filesystem of its own (tmpfs), where a full disk harms nothing else."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root with CAP_SYS_ADMIN")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_full_disk_is_unhealthy_until_space_is_freed(small_disk: Path) -> None:
    """Disk full: a new request cannot be written, and the probe says so; space freed: healthy."""
    store = Store.from_url(f"sqlite:///{small_disk / 'bot.db'}")
    store.migrate()
    health = DatabaseHealth(store.engine, cache_seconds=0)
    assert health.healthy()
    filler = small_disk / "filler"
    try:
        with filler.open("wb", buffering=0) as fill, pytest.raises(OSError, match="No space"):
            while True:
                fill.write(b"\0" * 65536)
        with pytest.raises(SQLAlchemyError):
            _create(store)
        assert not health.healthy()
        filler.unlink()
        assert health.healthy()
        _create(store)
    finally:
        store.close()
