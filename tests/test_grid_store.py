"""Versioned grid store: imports make new versions, keep history, and are all or nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from shapely import affinity

from gis.fixture_load import read_fixture_grids
from gis.grid_import import TopologyRejected, current_grids, import_grid_set
from gis.gridfiles import as_multipolygons
from gis.store import Database, create_engine, grid_counts, migrate


def _multi(geometry: shapely.Geometry) -> shapely.Geometry:
    return as_multipolygons(np.array([geometry], dtype=object))[0]


def test_migrations_are_idempotent(scratch_database: Database) -> None:
    engine = create_engine(scratch_database)
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert grid_counts(conn) == {"large": 0, "medium": 0, "small": 0}
    engine.dispose()


def test_store_holds_the_fixture_exactly(engine: sa.Engine, fixture_dir: Path) -> None:
    stored = current_grids(engine.connect())
    source = read_fixture_grids(fixture_dir).sort_values("code").reset_index(drop=True)
    assert list(stored["code"]) == list(source["code"])
    assert stored["level"].value_counts().to_dict() == {"small": 7507, "medium": 1086,
                                                         "large": 110}
    assert shapely.equals_exact(stored.geometry.values, source.geometry.values, 0.0).all()
    with engine.connect() as conn:
        parts = conn.execute(sa.text(
            "SELECT count(DISTINCT grid_id) FROM grid_part")).scalar_one()
        workers = conn.execute(sa.text("SELECT count(*) FROM gridworker")).scalar_one()
    assert parts == 8703
    assert workers == 7507


def test_reshape_between_neighbours_keeps_history(
    city_database: Database
) -> None:
    engine = create_engine(city_database)
    with engine.connect() as conn:
        small = current_grids(conn, ("small",))
    # Move the dedicated carve-out's area back to its host grid: two grids change, nothing else.
    dedicated = small[small["kind"] == "dedicated"].iloc[0]
    host_index = small.index[
        small.geometry.apply(lambda g: g.touches(dedicated.geometry))
        & (small["parent_code"] == dedicated["parent_code"])
    ][0]
    shrunk = affinity.scale(dedicated.geometry, 0.5, 0.5)
    edited = small.copy()
    edited.loc[host_index, "geometry"] = _multi(shapely.union(
        small.loc[host_index].geometry, shapely.difference(dedicated.geometry, shrunk)))
    edited.loc[edited["code"] == dedicated["code"], "geometry"] = _multi(shrunk)
    when = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        result = import_grid_set(conn, edited, author="test", reason="reshape", valid_from=when)
    assert sorted(result.changed) == sorted([dedicated["code"], small.loc[host_index, "code"]])
    assert result.added == [] and result.retired == [] and result.unchanged == 7505
    assert result.version == 2
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT version_low, version_high, valid_to FROM grid WHERE code = :c "
            "ORDER BY version_low"), {"c": dedicated["code"]}).all()
        before = current_grids(conn, ("small",), at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    assert [(r[0], r[1]) for r in rows] == [(1, 2), (2, None)]
    assert rows[0][2] == when
    old = before.set_index("code").loc[dedicated["code"]].geometry
    assert shapely.equals_exact(old, dedicated.geometry, 0.0)
    engine.dispose()


def test_unsound_import_leaves_the_store_unchanged(
    city_database: Database
) -> None:
    engine = create_engine(city_database)
    with engine.connect() as conn:
        small = current_grids(conn, ("small",))
    broken = small.copy()
    # Push one grid over its neighbours: overlaps and a child outside its parent.
    broken.loc[0, "geometry"] = _multi(affinity.scale(small.loc[0].geometry, 1.5, 1.5))
    with pytest.raises(TopologyRejected) as refused, engine.begin() as conn:
        import_grid_set(conn, broken, author="test", reason="broken")
    assert "nothing was imported" in refused.value.message
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM grid_version")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM grid")).scalar_one() == 8703
    engine.dispose()
