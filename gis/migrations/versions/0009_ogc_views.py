"""Views the OGC API collections read: current grids per level with colours, and event heat.

pygeoapi's PostgreSQL provider reflects each view and pages it ordered by its id column
(``code``). No gridworker phone and no event row is exposed through these views.

Revision ID: 0009
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- Every version of every grid with its names, district, gridworker (name only) and
        -- colour (blue with zero counts until the layer refresh has seen it). Colours are
        -- today's: history keeps boundaries and names, not past colours.
        CREATE VIEW ogc_grid_all AS
            SELECT g.code, g.parent_code, g.name, g.level, g.kind,
                   d.name AS district, g.district_code,
                   w.name AS gridworker,
                   coalesce(c.colour, 'blue')::varchar(6) AS colour,
                   coalesce(c.score, 0)::double precision AS score,
                   coalesce(c.open_events, 0) AS open_events,
                   coalesce(c.overdue_events, 0) AS overdue_events,
                   g.geom, g.version_high, g.valid_from, g.valid_to
            FROM grid g
            JOIN district d ON d.code = g.district_code
            LEFT JOIN grid_colour c ON c.code = g.code
            LEFT JOIN LATERAL (
                SELECT gw.name FROM gridworker gw
                WHERE gw.grid_code = g.code AND gw.active = 1
                ORDER BY gw.on_duty_since DESC, gw.worker_id
                LIMIT 1
            ) w ON true;
        -- The grids in force: what the collections serve by default.
        CREATE VIEW ogc_grid AS
            SELECT code, parent_code, name, level, kind, district, district_code, gridworker,
                   colour, score, open_events, overdue_events, geom
            FROM ogc_grid_all WHERE version_high IS NULL;
        CREATE VIEW ogc_grid_large AS SELECT * FROM ogc_grid WHERE level = 'large';
        CREATE VIEW ogc_grid_medium AS SELECT * FROM ogc_grid WHERE level = 'medium';
        CREATE VIEW ogc_grid_small AS SELECT * FROM ogc_grid WHERE level = 'small';
        -- Every version, for ``?at=``: a code appears once at any moment.
        CREATE VIEW ogc_grid_large_history AS SELECT * FROM ogc_grid_all WHERE level = 'large';
        CREATE VIEW ogc_grid_medium_history AS
            SELECT * FROM ogc_grid_all WHERE level = 'medium';
        CREATE VIEW ogc_grid_small_history AS SELECT * FROM ogc_grid_all WHERE level = 'small';

        -- Event heat per small grid: window totals and the 30-day count per category.
        CREATE VIEW ogc_heat AS
            SELECT g.code, g.name, d.name AS district, g.district_code, g.kind,
                   coalesce(h.events_7d, 0) AS events_7d,
                   coalesce(h.events_30d, 0) AS events_30d,
                   coalesce(h.by_category, '{}'::jsonb) AS categories_30d,
                   g.geom
            FROM grid g
            JOIN district d ON d.code = g.district_code
            LEFT JOIN LATERAL (
                SELECT sum(gh.events_7d)::integer AS events_7d,
                       sum(gh.events_30d)::integer AS events_30d,
                       jsonb_object_agg(gh.category, gh.events_30d) AS by_category
                FROM grid_heat gh WHERE gh.code = g.code
            ) h ON true
            WHERE g.version_high IS NULL AND g.level = 'small';
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP VIEW IF EXISTS ogc_heat, ogc_grid_small_history, ogc_grid_medium_history, "
        "ogc_grid_large_history, ogc_grid_small, ogc_grid_medium, ogc_grid_large, ogc_grid, "
        "ogc_grid_all"
    )
