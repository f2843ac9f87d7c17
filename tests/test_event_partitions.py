"""The monthly partitions of ``event``: where rows land, DEFAULT, idempotency across months,
the upkeep, and migration 0010 on a database that already holds events.

Writes go to scratch databases: a module-scoped city (grids only) and, for the migration, a
database built only up to 0009.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from gis.events.ingest import ALREADY, CREATED, ingest_events
from gis.events.partitions import (
    DEFAULT_PARTITION,
    maintain_partitions,
    month_of,
    monthly_partitions,
    next_month,
    partition_name,
    previous_month,
)
from gis.grid_snapshot import GridSnapshot, load_snapshot
from gis.store import Database, create_engine, migrate

BEIJING = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime.now(dt.UTC)


@dataclasses.dataclass
class City:
    """A scratch city with grids and no events."""

    database: Database
    engine: Engine
    snapshot: GridSnapshot
    code: str
    lon: float
    lat: float

    def ingest(self, rows: list[dict[str, Any]]) -> Any:
        """Ingest in one committed transaction."""
        with self.engine.begin() as conn:
            return ingest_events(conn, self.snapshot, rows)

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]

    def event(self, source_id: str, reported_at: dt.datetime) -> dict[str, Any]:
        """An event inside the city's first small grid."""
        return {"source": "12345", "source_id": source_id, "category": "环境卫生",
                "severity": 2, "reported_at": reported_at.isoformat(),
                "lon": self.lon, "lat": self.lat}


@pytest.fixture(scope="module")
def city(grids_module_database: Database) -> Iterator[City]:
    engine = create_engine(grids_module_database)
    with engine.connect() as conn:
        snapshot = load_snapshot(conn)
    code = sorted(snapshot.index.codes)[0]
    point = shapely.point_on_surface(snapshot.index.geoms[snapshot.index.codes.index(code)])
    yield City(grids_module_database, engine, snapshot, code, point.x, point.y)
    engine.dispose()


def _where(city: City, source_id: str) -> list[tuple[Any, ...]]:
    return city.rows("SELECT tableoid::regclass::text, id, reported_at FROM event "
                     "WHERE source_id = :s", s=source_id)


def test_migration_creates_last_month_to_three_ahead(city: City) -> None:
    with city.engine.connect() as conn:
        months = monthly_partitions(conn)
    expected = [previous_month(month_of(NOW))]
    while len(expected) < 5:
        expected.append(next_month(expected[-1]))
    assert sorted(months) == expected
    assert months[expected[1]] == partition_name(month_of(NOW))


def test_rows_land_in_the_partition_of_their_beijing_month(city: City) -> None:
    this_month = dt.datetime.combine(month_of(NOW), dt.time(0, 0), BEIJING)
    last_moment = this_month - dt.timedelta(microseconds=1)  # 23:59:59.999999 of last month
    result = city.ingest([city.event("P-NOW", this_month), city.event("P-LAST", last_moment)])
    assert [o.result for o in result.outcomes] == [CREATED, CREATED]
    assert _where(city, "P-NOW")[0][0] == partition_name(month_of(NOW))
    assert _where(city, "P-LAST")[0][0] == partition_name(previous_month(month_of(NOW)))
    keys = city.rows("SELECT source_id, event_id, reported_at FROM event_key "
                     "WHERE source_id IN ('P-NOW', 'P-LAST') ORDER BY source_id")
    assert [(s, i) for s, i, _ in keys] == [
        ("P-LAST", result.outcomes[1].id), ("P-NOW", result.outcomes[0].id)]
    assert keys[1][2] == this_month


def test_same_key_in_another_month_answers_already_had_it(city: City) -> None:
    first_at = dt.datetime.combine(month_of(NOW), dt.time(9, 0), BEIJING)
    first = city.ingest([city.event("P-TWICE", first_at)]).outcomes[0]
    again = city.ingest([city.event("P-TWICE", first_at - dt.timedelta(days=40)),
                         city.event("P-TWICE", dt.datetime(2019, 3, 5, 8, 0, tzinfo=BEIJING))])
    assert first.result == CREATED
    assert [(o.result, o.id, o.grid_code) for o in again.outcomes] == [
        (ALREADY, first.id, city.code), (ALREADY, first.id, city.code)]
    assert _where(city, "P-TWICE") == [(partition_name(month_of(NOW)), first.id, first_at)]
    assert city.rows("SELECT count(*) FROM event_key WHERE source_id = 'P-TWICE'") == [(1,)]


def test_repeat_inside_a_batch_keeps_the_first_by_input_order(city: City) -> None:
    later = dt.datetime.combine(month_of(NOW), dt.time(10, 0), BEIJING)
    earlier = later - dt.timedelta(days=35)
    result = city.ingest([city.event("P-REPEAT", later), city.event("P-REPEAT", earlier)])
    assert [o.result for o in result.outcomes] == [CREATED, ALREADY]
    assert result.outcomes[0].id == result.outcomes[1].id
    assert _where(city, "P-REPEAT") == [(partition_name(month_of(NOW)), result.outcomes[0].id,
                                         later)]


def test_concurrent_twin_batch_waits_and_answers_already_had_it(city: City) -> None:
    at = dt.datetime.combine(month_of(NOW), dt.time(11, 0), BEIJING)
    batch = [city.event(f"P-TWIN-{i}", at - dt.timedelta(days=10 * i)) for i in range(3)]
    answers: list[Any] = []
    with city.engine.begin() as first:
        mine = ingest_events(first, city.snapshot, batch)
        twin = threading.Thread(target=lambda: answers.append(city.ingest(batch)))
        twin.start()
        twin.join(timeout=1.0)
        assert twin.is_alive()  # waiting on the first batch's keys
    twin.join(timeout=30)
    assert [o.result for o in mine.outcomes] == [CREATED] * 3
    assert [(o.result, o.id) for o in answers[0].outcomes] == [
        (ALREADY, o.id) for o in mine.outcomes]
    assert city.rows("SELECT count(*) FROM event WHERE source_id LIKE 'P-TWIN-%'") == [(3,)]


def test_default_catches_an_odd_date_and_the_upkeep_moves_it_out(city: City) -> None:
    odd = dt.datetime(2019, 3, 5, 8, 0, tzinfo=BEIJING)
    edge = dt.datetime(2019, 4, 1, 0, 0, tzinfo=BEIJING)  # the next month's first moment
    created = city.ingest([city.event("P-ODD", odd), city.event("P-EDGE", edge)]).outcomes
    assert _where(city, "P-ODD") == [(DEFAULT_PARTITION, created[0].id, odd)]
    assert _where(city, "P-EDGE") == [(DEFAULT_PARTITION, created[1].id, edge)]
    with city.engine.begin() as conn:  # a status change, to see it survive the move
        conn.execute(sa.text("INSERT INTO event_status_change (event_id, old_status, new_status,"
                             " changed_by) VALUES (:id, 'open', 'closed', 'test')"),
                     {"id": created[0].id})
        conn.execute(sa.text("UPDATE event SET status = 'closed' WHERE id = :id"),
                     {"id": created[0].id})
    report = maintain_partitions(city.engine.begin, now=NOW)
    assert report.created == ["event_2019_03", "event_2019_04"]
    assert report.moved == {"event_2019_03": 1, "event_2019_04": 1}
    assert (report.skipped, report.in_default) == ([], 0)
    assert _where(city, "P-ODD") == [("event_2019_03", created[0].id, odd)]
    assert _where(city, "P-EDGE") == [("event_2019_04", created[1].id, edge)]
    assert city.rows("SELECT status, grid_code, ST_AsText(geom) FROM event WHERE id = :id",
                     id=created[0].id) == [("closed", city.code,
                                            f"POINT({city.lon!r} {city.lat!r})")]
    assert city.rows("SELECT new_status FROM event_status_change WHERE event_id = :id",
                     id=created[0].id) == [("closed",)]
    # Only months with rows are made: no span of empty months back to an odd date.
    again = maintain_partitions(city.engine.begin, now=NOW)
    assert (again.created, again.moved, again.in_default) == ([], {}, 0)


def test_partitions_command(city: City) -> None:
    from api.cli import app

    done = CliRunner().invoke(app, ["events", "partitions", "--ahead", "5"],
                              env={"MINQING_DB_URL": city.database.url})
    assert done.exit_code == 0, done.output
    ahead = month_of(NOW)
    for _ in range(5):
        ahead = next_month(ahead)
    assert f"({partition_name(previous_month(ahead))}, {partition_name(ahead)})" in done.output
    assert "2 partitions created" in done.output and "0 events in event_default" in done.output


@pytest.fixture
def database_at_0009(database: Database) -> Iterator[Engine]:
    """An empty scratch database migrated to 0009 only (dropped afterwards)."""
    if database.cluster is None:
        pytest.skip("scratch databases need the embedded cluster")
    name = "minqing_scratch_0009"
    database.cluster.drop_database(name)
    database.cluster.ensure_database(name)
    engine = create_engine(Database(url=database.cluster.url(name), cluster=database.cluster))
    migrate(engine, "0009")
    try:
        yield engine
    finally:
        engine.dispose()
        database.cluster.drop_database(name)


_OLD_EVENTS = """
INSERT INTO grid_version (valid_from, author, reason) VALUES (now(), 'test', 'test');
INSERT INTO event (source, source_id, category, severity, status, reported_at, due_at, lon, lat,
                   grid_code, grid_version, route, route_note, reporter_name, text)
SELECT '12345', 'OLD-' || i, '环境卫生', 1 + i % 4, CASE WHEN i % 3 = 0 THEN 'closed' ELSE 'open'
       END, CAST(:start AS timestamptz) + i * interval '1 day', NULL,
       CASE WHEN i % 7 = 0 THEN NULL ELSE 103.8 + i / 1000.0 END, 36.05,
       CASE WHEN i % 7 = 0 THEN NULL ELSE '620102001001001' END, 1,
       CASE WHEN i % 7 = 0 THEN 'unrouted' ELSE 'exact' END, 'note ' || i, '张三', '投诉 ' || i
FROM generate_series(0, 99) AS i;
INSERT INTO event (source, source_id, category, severity, status, reported_at, route)
VALUES ('110', 'OLD-ODD', '其他', 1, 'open', '2019-05-03 10:00+08', 'unrouted');
INSERT INTO event_status_change (event_id, old_status, new_status, changed_by)
SELECT id, 'open', 'closed', 'staff' FROM event WHERE status = 'closed';
INSERT INTO event_reroute (from_versions, to_version, open_events, moved, unchanged,
                           became_unrouted, became_routed)
VALUES ('{1}', 1, 67, 2, 65, 0, 0);
INSERT INTO event_reroute_move (reroute_id, event_id, old_code, new_code, old_version)
SELECT 1, id, grid_code, grid_code, 1 FROM event WHERE source_id IN ('OLD-1', 'OLD-2');
"""
_EVENT_SNAPSHOT = """
SELECT id, source, source_id, category, severity, status, reported_at, lon, lat, grid_code,
       route, route_note, reporter_name, text, received_at, ST_AsText(geom) FROM event ORDER BY id
"""


def _stored(conn: sa.Connection) -> tuple[list[Any], list[Any], list[Any]]:
    """Every event, status change and re-route move, in a stable order."""
    return (list(conn.execute(sa.text(_EVENT_SNAPSHOT)).all()),
            list(conn.execute(sa.text("SELECT * FROM event_status_change ORDER BY id")).all()),
            list(conn.execute(sa.text(
                "SELECT * FROM event_reroute_move ORDER BY event_id")).all()))


def test_migration_converts_a_database_with_events(database_at_0009: Engine) -> None:
    engine = database_at_0009
    start = dt.datetime(2026, 8, 20, 12, 0, tzinfo=BEIJING)  # 100 days: Aug to Nov
    with engine.begin() as conn:
        for statement in _OLD_EVENTS.split(";")[:-1]:
            conn.execute(sa.text(statement), {"start": start} if ":start" in statement else {})
    with engine.connect() as conn:
        events, history, moves = _stored(conn)
    assert (len(events), len(history), len(moves)) == (101, 34, 2)

    migrate(engine, "0010")
    with engine.connect() as conn:
        assert _stored(conn) == (events, history, moves)
        assert conn.execute(sa.text(
            """SELECT count(*) FROM event e JOIN event_key k
                 ON k.event_id = e.id AND (k.source, k.source_id, k.reported_at)
                    = (e.source, e.source_id, e.reported_at)""")).scalar_one() == 101
        per_partition = dict(conn.execute(sa.text(
            "SELECT tableoid::regclass::text, count(*) FROM event GROUP BY 1")).all())
        months = monthly_partitions(conn)
    # 2026-08-20 .. 2026-11-27 Beijing: 12 + 30 + 31 + 27 days; the odd date in its own month.
    assert per_partition == {"event_2026_08": 12, "event_2026_09": 30, "event_2026_10": 31,
                             "event_2026_11": 27, "event_2019_05": 1}
    span = [dt.date(2026, 8, 1)]  # then every month to three ahead, no gap-filling back to 2019
    while span[-1] < next_month(next_month(next_month(month_of(NOW)))):
        span.append(next_month(span[-1]))
    assert sorted(months) == [dt.date(2019, 5, 1), *span]
    with engine.begin() as conn:  # the sequence goes on; the history's key still holds
        conn.execute(sa.text(
            """INSERT INTO event_key (source, source_id, reported_at)
               VALUES ('12345', 'NEW-1', now())"""))
        new_id = conn.execute(sa.text(
            "SELECT event_id FROM event_key WHERE source_id = 'NEW-1'")).scalar_one()
        assert new_id == events[-1][0] + 1
        with pytest.raises(sa.exc.IntegrityError, match="event_status_change_event_id_fkey"):
            with conn.begin_nested():
                conn.execute(sa.text(
                    """INSERT INTO event_status_change (event_id, old_status, new_status,
                                                        changed_by)
                       VALUES (:id, 'open', 'closed', 'x')"""), {"id": new_id + 1000})
        conn.execute(sa.text("DELETE FROM event_key WHERE source_id = 'NEW-1'"))

    migrate_down(engine)
    with engine.connect() as conn:
        assert _stored(conn) == (events, history, moves)
        assert conn.execute(sa.text("SELECT to_regclass('event_key')")).scalar_one() is None
        assert conn.execute(sa.text(
            "SELECT relkind FROM pg_class WHERE relname = 'event'")).scalar_one() == "r"
    migrate(engine, "0010")
    with engine.connect() as conn:
        assert conn.execute(sa.text(_EVENT_SNAPSHOT)).all() == events


def migrate_down(engine: Engine) -> None:
    """Downgrade the database to 0009."""
    from alembic import command
    from alembic.config import Config

    from gis.store import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
