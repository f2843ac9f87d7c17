"""Grid store: districts, grid versions, versioned grids, subdivided parts, gridworkers.

Revision ID: 0001
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute(
        """
        CREATE TABLE district (
            code varchar(6) PRIMARY KEY,
            name text NOT NULL,
            centre geometry(Point, 4326)
        );
        CREATE TABLE grid_version (
            id serial PRIMARY KEY,
            valid_from timestamptz NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            author text NOT NULL,
            reason text NOT NULL,
            summary text
        );
        CREATE TABLE grid (
            id serial PRIMARY KEY,
            code varchar(15) NOT NULL,
            level varchar(6) NOT NULL,
            parent_code varchar(12),
            name text NOT NULL,
            kind varchar(9) NOT NULL,
            district_code varchar(6) NOT NULL REFERENCES district(code),
            version_low integer NOT NULL REFERENCES grid_version(id),
            version_high integer REFERENCES grid_version(id),
            valid_from timestamptz NOT NULL,
            valid_to timestamptz,
            vertex_count integer NOT NULL,
            geom geometry(MultiPolygon, 4326) NOT NULL,
            CONSTRAINT grid_level CHECK (level IN ('large', 'medium', 'small')),
            CONSTRAINT grid_kind CHECK (
                (level = 'small' AND kind IN ('urban', 'rural', 'dedicated'))
                OR (level <> 'small' AND kind IN ('urban', 'rural'))),
            CONSTRAINT grid_code_shape CHECK (
                length(code) = CASE level WHEN 'large' THEN 9 WHEN 'medium' THEN 12 ELSE 15 END
                AND code ~ '^[0-9]+$'),
            CONSTRAINT grid_code_parent CHECK (
                (level = 'large' AND parent_code IS NULL)
                OR (level <> 'large' AND left(code, length(parent_code)) = parent_code)),
            CONSTRAINT grid_range CHECK (version_high IS NULL OR version_high > version_low),
            CONSTRAINT grid_geom_valid CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))
        );
        CREATE UNIQUE INDEX grid_current_code ON grid (code) WHERE version_high IS NULL;
        CREATE UNIQUE INDEX grid_code_low ON grid (code, version_low);
        CREATE INDEX grid_parent ON grid (parent_code);
        CREATE INDEX idx_grid_geom ON grid USING gist (geom);
        CREATE TABLE grid_part (
            id serial PRIMARY KEY,
            grid_id integer NOT NULL REFERENCES grid(id) ON DELETE CASCADE,
            level varchar(6) NOT NULL,
            geom geometry(Polygon, 4326) NOT NULL
        );
        CREATE INDEX ix_grid_part_grid_id ON grid_part (grid_id);
        CREATE INDEX idx_grid_part_geom ON grid_part USING gist (geom);
        CREATE TABLE gridworker (
            worker_id varchar(32) PRIMARY KEY,
            grid_code varchar(15) NOT NULL,
            name text NOT NULL,
            phone varchar(20) NOT NULL,
            on_duty_since date NOT NULL,
            active smallint NOT NULL DEFAULT 1
        );
        CREATE INDEX ix_gridworker_grid_code ON gridworker (grid_code);
        -- The grids in force now: what the API, OGC collections and tiles read.
        CREATE VIEW grid_current AS
            SELECT id, code, level, parent_code, name, kind, district_code, version_low,
                   valid_from, vertex_count, geom
            FROM grid WHERE version_high IS NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP VIEW IF EXISTS grid_current; DROP TABLE IF EXISTS gridworker, grid_part, grid, "
        "grid_version, district CASCADE"
    )
