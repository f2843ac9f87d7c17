"""PostgreSQL restarted while clients post events: 503 + Retry-After, then each event stored once.

`minqing serve` runs as a subprocess on a second embedded cluster of this module's own (in a
temporary folder), so stopping PostgreSQL never touches the shared test cluster, its session
engine or the in-process app whose listener would flip to degraded under other tests. Clients
post event batches (and single events) with the ingest role's token in a loop and retry every
503 with the same body after the Retry-After it names. PostgreSQL is stopped three times:
1. while every client's transaction is open (the test holds the boundary-commit lock the ingest
   waits on, as a boundary commit would), kept down 2 s, then started;
2. stopped and started at once under load, wherever the clients happen to be;
3. while every client is in COMMIT (held by a synchronous standby that never comes): the first
   body is committed but not answered, so the 503 says it may be stored, and the retry finds it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from test_crash_restart import _free_port, _serve

from api.routes.events import COMMIT_LOST
from api.settings import Settings
from gis.auth import issue_token
from gis.grid_change_commit import _CHANGE_LOCK as BOUNDARY_LOCK
from gis.localdb import LocalCluster
from gis.settings import DatabaseSettings
from gis.store import Database, create_engine

pytestmark = pytest.mark.slow

BATCH = 200
BATCH_SENDERS = 3
CLIENTS = BATCH_SENDERS + 1  # and one posting single events
POINT = {"lon": "103.83", "lat": "36.06"}
DB_NAME = "minqing_restart"


@dataclass(frozen=True)
class City:
    """A loaded city on a cluster of its own, an ingest token on it, and the served URL."""

    cluster: LocalCluster
    engine: sa.Engine
    token: str
    base: str
    log: Path


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _copy_city(source: str, target: str) -> None:
    """Copy the loaded test city without its events (pg_dump | pg_restore: 4 s, a load 16 s)."""
    tools = [shutil.which(name) for name in ("pg_dump", "pg_restore")]
    if None in tools:
        pytest.skip("pg_dump and pg_restore are needed to copy the city")
    dump = subprocess.run([str(tools[0]), "--format=custom", "--compress=0",
                           "--exclude-table-data=event*", f"--dbname={_libpq(source)}"],
                          check=True, capture_output=True).stdout
    subprocess.run([str(tools[1]), "--no-owner", "--exit-on-error", f"--dbname={_libpq(target)}"],
                   input=dump, check=True, capture_output=True)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory, database: Database, engine: sa.Engine
         ) -> Iterator[City]:
    folder = tmp_path_factory.mktemp("restart")
    cluster = LocalCluster.for_data_dir(folder)
    process: subprocess.Popen[bytes] | None = None
    try:
        cluster.start()
        cluster.ensure_database(DB_NAME)
        _copy_city(database.url, cluster.url(DB_NAME))
        own = create_engine(Database(cluster.url(DB_NAME), cluster))
        with own.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one() == 0
            token = issue_token(conn, "restart ingest", "ingest")
        port, log = _free_port(), folder / "serve.log"
        process = _serve(port, Settings(db=DatabaseSettings(url=cluster.url(DB_NAME))), log)
        yield City(cluster, own, token, f"http://127.0.0.1:{port}", log)
        own.dispose()
    finally:
        try:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:  # requests still hang in a failed run
                    process.kill()
                    process.wait(timeout=10)
        finally:
            cluster.stop()
            shutil.rmtree(cluster.pgdata.parent, ignore_errors=True)


def _event(prefix: str, i: int) -> dict[str, Any]:
    # Spread over the urban core; the position only decides the grid, never whether it is kept.
    return {"source": "12345", "source_id": f"{prefix}-{i}", "category": "环境卫生",
            "severity": 2, "reported_at": "2026-11-30T09:00:00+08:00",
            "lon": 103.6 + (i * 7919 % 3500) / 10_000, "lat": 36.03 + (i * 104_729 % 900) / 10_000}


@dataclass
class Sent:
    """One body a client sent until it was accepted, and what the accepting answer said."""

    body: Any
    tries: int = 0
    answer: dict[str, Any] = field(default_factory=dict)
    status: int = 0


@dataclass
class Client:
    """A client posting one body after another, each retried after every 503 until accepted."""

    name: str
    url: str
    token: str
    sent: list[Sent] = field(default_factory=list)
    unavailable: Counter[str] = field(default_factory=Counter)  # 503 messages
    faults: list[str] = field(default_factory=list)  # anything else unexpected
    accepted: int = 0

    def body(self, number: int) -> Any:
        """The ``number``-th body this client sends."""
        if self.name == "single":
            return _event("S", number)
        return [_event(f"{self.name}.{number}", i) for i in range(BATCH)]

    def run(self, stop: threading.Event) -> None:
        """Post bodies until ``stop`` is set (the body in hand is always finished)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=60) as session:
            while not stop.is_set() and not self.faults:
                sent = Sent(self.body(len(self.sent)))
                self.sent.append(sent)
                self._until_accepted(session, sent, headers)
                self.accepted += 1

    def _until_accepted(self, session: httpx.Client, sent: Sent,
                        headers: dict[str, str]) -> None:
        while not self.faults:
            sent.tries += 1
            try:
                answer = session.post(self.url, json=sent.body, headers=headers)
            except httpx.TransportError as error:  # never expected: uvicorn stays up
                self.faults.append(f"no answer: {error!r}")
                return
            if answer.status_code == 503:
                problem = _unavailable_problem(answer)
                if problem:
                    self.faults.append(problem)
                    return
                self.unavailable[answer.json()["message"]] += 1
                time.sleep(float(answer.headers["Retry-After"]))
                continue
            if answer.status_code not in (200, 201):
                self.faults.append(f"{answer.status_code}: {answer.text[:300]}")
                return
            sent.status, sent.answer = answer.status_code, answer.json()
            return


def _unavailable_problem(answer: httpx.Response) -> str:
    """What is wrong with a 503 (empty if it is as promised)."""
    try:
        body = answer.json()
    except ValueError:
        return f"503 without a JSON body: {answer.text[:200]}"
    if answer.headers.get("retry-after") != "5":
        return f"503 without Retry-After: {dict(answer.headers)}"
    if body.get("error") != "unavailable" or "the database is unavailable" not in str(
            body.get("message")):
        return f"503 with an unexpected body: {body}"
    if body.get("request_id") != answer.headers.get("x-request-id"):
        return f"503 whose request_id is not the header's: {body}"
    return ""


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _waiting_on_the_lock(engine: sa.Engine) -> int:
    # A bigint advisory key shows as classid (high 32 bits), objid (low 32 bits), objsubid 1.
    with engine.connect() as conn:
        return int(conn.execute(sa.text(
            """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
               AND classid::bigint * 4294967296 + objid::bigint = :k AND objsubid = 1"""),
            {"k": BOUNDARY_LOCK}).scalar_one())


def _standby_names(engine: sa.Engine) -> str:
    # A new session takes the settings the postmaster has.
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SHOW synchronous_standby_names")).scalar_one())


def _in_commit(engine: sa.Engine) -> tuple[int, int]:
    """Sessions running COMMIT, and those of them waiting for the synchronous standby."""
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            """SELECT count(*), count(*) FILTER (WHERE wait_event = 'SyncRep')
               FROM pg_stat_activity WHERE state = 'active' AND query = 'COMMIT'""")).one()
    return int(row[0]), int(row[1])


def _readyz(base: str) -> httpx.Response:
    return httpx.get(f"{base}/readyz", timeout=10)


def _rows_outcomes(sent: Sent) -> list[dict[str, Any]]:
    return sent.answer["results"] if isinstance(sent.body, list) else [sent.answer]


def _accepted_more(clients: list[Client], bodies: int) -> None:
    """Wait until every client has had ``bodies`` more bodies accepted."""
    marks = [c.accepted + bodies for c in clients]
    _wait(lambda: all(c.accepted >= m or c.faults for c, m in zip(clients, marks, strict=True)),
          60, f"{bodies} more bodies accepted per client")


def _answered_503(clients: list[Client]) -> int:
    return sum(sum(c.unavailable.values()) for c in clients)


def test_postgres_restarted_during_ingest_loses_and_doubles_nothing(city: City) -> None:
    clients = [Client(f"B{n}", f"{city.base}/api/v1/events/batch", city.token)
               for n in range(BATCH_SENDERS)]
    clients.append(Client("single", f"{city.base}/api/v1/events", city.token))
    stop = threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop,), name=c.name) for c in clients]
    lock_conn = city.engine.connect()
    try:
        for thread in threads:
            thread.start()
        _accepted_more(clients, 3)

        # 1. Stopped while every client's next body waits inside its transaction (as behind a
        #    boundary commit), kept down 2 s, started again.
        lock_conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": BOUNDARY_LOCK})
        _wait(lambda: _waiting_on_the_lock(city.engine) == CLIENTS, 30,
              "every client blocked in its transaction")
        down_at = time.monotonic()
        city.cluster.stop()  # pg_ctl stop -m fast: open transactions are terminated
        lock_conn.invalidate()
        _wait(lambda: all(c.unavailable or c.faults for c in clients), 30,
              "a 503 for every client")
        not_ready = _readyz(city.base)
        during = httpx.get(f"{city.base}/api/v1/locate", params=POINT, timeout=10)
        time.sleep(max(0.0, down_at + 2.0 - time.monotonic()))
        city.cluster.start()
        outage_s = time.monotonic() - down_at
        _wait(lambda: _readyz(city.base).status_code == 200, 30, "ready again")
        ready_after_s = time.monotonic() - down_at
        first_503s = _answered_503(clients)
        _accepted_more(clients, 3)

        # 2. Restarted at once (stop -m fast, start) under load, wherever the clients are.
        restart_at = time.monotonic()
        city.cluster.stop()
        city.cluster.start()
        restart_s = time.monotonic() - restart_at
        _accepted_more(clients, 3)

        # 3. Stopped while every client is in COMMIT, held there by a synchronous standby that
        #    never comes: the first body is committed, yet no answer can say so.
        with city.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
            admin.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": BOUNDARY_LOCK})
            _wait(lambda: _waiting_on_the_lock(city.engine) == CLIENTS, 30,
                  "every client blocked in its transaction")
            in_hand = [len(c.sent) - 1 for c in clients]  # the body each one has in hand
            lost_before = [c.unavailable[COMMIT_LOST] for c in clients]  # stop 2 may cut one
            second_503s = _answered_503(clients) - first_503s
            admin.execute(sa.text("ALTER SYSTEM SET synchronous_standby_names = 'nobody'"))
            admin.execute(sa.text("SELECT pg_reload_conf()"))
            _wait(lambda: _standby_names(city.engine) == "nobody", 30, "the reload")
            time.sleep(0.5)  # the postmaster has it; its children, the checkpointer too, soon
            admin.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": BOUNDARY_LOCK})
            _wait(lambda: _in_commit(city.engine)[0] == CLIENTS, 30,
                  "every client in COMMIT")
            # The first to COMMIT holds the NOTIFY queue lock while it waits for the standby,
            # so the others queue behind it, not yet committed.
            committed = _in_commit(city.engine)[1]
            admin.execute(sa.text("ALTER SYSTEM RESET synchronous_standby_names"))
        city.cluster.stop()
        city.cluster.start()
        _accepted_more(clients, 3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        lock_conn.close()

    assert [c.faults for c in clients] == [[]] * CLIENTS, city.log.read_text()[-3000:]
    assert not_ready.status_code == 503 and not_ready.headers["retry-after"] == "5"
    assert not_ready.json()["status"] == "not_ready"
    assert any("database unreachable" in r for r in not_ready.json()["reasons"])
    assert during.status_code == 200 and during.json()["degraded"] is True

    # Each client's first 503 came from its transaction being terminated mid-request.
    mid_transaction = "the database is unavailable; nothing was changed, retry shortly"
    assert all(c.unavailable[mid_transaction] >= 1 for c in clients), [
        c.unavailable for c in clients]

    # Each body cut in COMMIT got the 503 saying it may be stored; the one committed (waiting
    # for the standby) was stored, and its retry found it. The fast shutdown ends the backends
    # one by one: a body queued behind may still write its commit record as the one ahead of it
    # dies, so more may be found stored than were committed when sampled (never fewer).
    found = 0
    for client, number, before in zip(clients, in_hand, lost_before, strict=True):
        assert client.unavailable[COMMIT_LOST] == before + 1, client.unavailable
        cut = client.sent[number]
        assert cut.tries == 2, (client.name, cut.tries)
        found += {o["result"] for o in _rows_outcomes(cut)} == {"already had it"}
    assert committed == 1 and committed <= found <= CLIENTS

    expected: dict[str, int] = {}  # source_id -> the id its accepting answer gave
    for client in clients:
        for sent in client.sent:
            outcomes = _rows_outcomes(sent)
            results = {o["result"] for o in outcomes}
            # One transaction per body: a retried body was stored whole or not at all before.
            assert results in ({"created"}, {"already had it"}), (client.name, outcomes[:3])
            if sent.tries == 1:
                assert results == {"created"}
            if client.name == "single":
                assert sent.status == (201 if results == {"created"} else 200)
            rows = sent.body if isinstance(sent.body, list) else [sent.body]
            for row, outcome in zip(rows, outcomes, strict=True):
                expected[row["source_id"]] = outcome["id"]
    sent_events = sum(len(c.sent) for c in clients[:BATCH_SENDERS]) * BATCH + len(
        clients[-1].sent)
    assert len(expected) == sent_events
    with city.engine.connect() as conn:
        stored = dict(conn.execute(sa.text(
            "SELECT source_id, id FROM event WHERE source = '12345'")).all())
        total = conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one()
    assert total == len(stored) == sent_events
    assert stored == expected  # every accepted event is there, under the id it was answered

    # Retrying an accepted batch later creates nothing.
    again = httpx.post(clients[0].url, json=clients[0].body(0), timeout=60,
                       headers={"Authorization": f"Bearer {city.token}"}).json()
    assert (again["created"], again["already_had"]) == (0, BATCH)

    retried = sum(1 for c in clients for sent in c.sent if sent.tries > 1)
    third_503s = _answered_503(clients) - first_503s - second_503s
    print(f"\nrestart: {sent_events} events in {[len(c.sent) for c in clients]} bodies "
          f"({retried} retried); stop 1: down {outage_s:.1f} s, ready {ready_after_s:.1f} s "
          f"after the stop, {first_503s} answered 503; restart 2: {restart_s:.1f} s, "
          f"{second_503s} answered 503; stop 3 in "
          f"COMMIT: {third_503s} answered 503; messages "
          f"{dict(sum((c.unavailable for c in clients), Counter()))}")
