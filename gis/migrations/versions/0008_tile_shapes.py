"""Tile shapes: each grid row pre-simplified in Web Mercator per zoom band, and an anchor point.

Filled by a trigger on ``grid`` inserts (grid rows are immutable once written: a boundary change
adds rows), so every version, past ones included, has its shapes without any fill job.

Revision ID: 0008
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Zoom bands with their own shape (tiles/shapes.py holds the same list): a band serves its zoom
# and the next; below the first the first serves; from zoom 14 tiles read the stored geometry.
BANDS = (6, 8, 10, 12)
LEVELS = ("large", "medium", "small")

# Douglas-Peucker at one tile-grid cell (4096 per tile) of the band's zoom, in EPSG:3857 metres;
# preserveCollapsed keeps tiny grids from vanishing.
_SHAPES = """
    SELECT n.id, n.level, b.band,
           ST_Simplify(ST_Transform(n.geom, 3857), 40075016.686 / (4096 * 2 ^ b.band), true)
    FROM {source} n CROSS JOIN unnest(ARRAY[{bands}]) AS b(band)
"""
_ANCHORS = "SELECT n.id, n.level, ST_Transform(ST_PointOnSurface(n.geom), 3857) FROM {source} n"


def _fill(source: str) -> str:
    shapes = _SHAPES.format(source=source, bands=", ".join(map(str, BANDS)))
    return (f"INSERT INTO grid_tile_shape (grid_id, level, band, geom) {shapes};\n"
            f"INSERT INTO grid_tile_anchor (grid_id, level, geom) "
            f"{_ANCHORS.format(source=source)};")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE grid_tile_shape (
            grid_id integer NOT NULL REFERENCES grid(id) ON DELETE CASCADE,
            level varchar(6) NOT NULL,
            band smallint NOT NULL,
            geom geometry(Geometry, 3857) NOT NULL,
            PRIMARY KEY (grid_id, band)
        );
        CREATE TABLE grid_tile_anchor (
            grid_id integer PRIMARY KEY REFERENCES grid(id) ON DELETE CASCADE,
            level varchar(6) NOT NULL,
            geom geometry(Point, 3857) NOT NULL
        );
        CREATE INDEX grid_tile_anchor_geom ON grid_tile_anchor USING gist (geom);
        """
    )
    # One partial GiST index per (level, band): a tile query reads exactly one of them.
    for level in LEVELS:
        for band in BANDS:
            op.execute(f"CREATE INDEX grid_tile_shape_{level}_{band} ON grid_tile_shape "
                       f"USING gist (geom) WHERE level = '{level}' AND band = {band}")
    op.execute(
        f"""
        CREATE FUNCTION grid_tile_shapes_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {_fill("new_grid")}
            RETURN NULL;
        END $$;
        CREATE TRIGGER grid_tile_shapes_insert AFTER INSERT ON grid
            REFERENCING NEW TABLE AS new_grid
            FOR EACH STATEMENT EXECUTE FUNCTION grid_tile_shapes_insert();

        -- Geometries are not edited in place today; should one be, its shapes follow.
        CREATE FUNCTION grid_tile_shapes_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM grid_tile_shape WHERE grid_id = NEW.id;
            DELETE FROM grid_tile_anchor WHERE grid_id = NEW.id;
            {_fill("(SELECT NEW.id AS id, NEW.level AS level, NEW.geom AS geom)")}
            RETURN NULL;
        END $$;
        CREATE TRIGGER grid_tile_shapes_update AFTER UPDATE OF geom ON grid
            FOR EACH ROW EXECUTE FUNCTION grid_tile_shapes_update();

        {_fill("grid")}
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS grid_tile_shapes_insert ON grid;
        DROP TRIGGER IF EXISTS grid_tile_shapes_update ON grid;
        DROP FUNCTION IF EXISTS grid_tile_shapes_insert(), grid_tile_shapes_update();
        DROP TABLE IF EXISTS grid_tile_shape, grid_tile_anchor;
        """
    )
