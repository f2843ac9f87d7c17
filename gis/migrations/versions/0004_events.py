"""Events (民情事件) routed to small grids, re-route log, and the layer tables beside grid_colour.

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE event (
            id bigserial PRIMARY KEY,
            source varchar(16) NOT NULL,
            source_id varchar(64) NOT NULL,
            category varchar(16) NOT NULL,
            severity smallint NOT NULL CHECK (severity BETWEEN 1 AND 4),
            status varchar(11) NOT NULL
                CHECK (status IN ('open', 'in_progress', 'resolved', 'closed')),
            reported_at timestamptz NOT NULL,
            due_at timestamptz,
            input_crs varchar(8),
            input_lon double precision,
            input_lat double precision,
            lon double precision,
            lat double precision,
            -- The small grid owning the event under grid_version; NULL while unrouted.
            grid_code varchar(15),
            -- No foreign key: versions are never deleted, and the check costs a fifth of ingest.
            grid_version integer,
            -- exact: inside a grid; snapped: outside but within tolerance of the nearest grid;
            -- given: an explicit grid code; manual: placed by staff; unrouted: none of those.
            route varchar(8) NOT NULL
                CHECK (route IN ('exact', 'snapped', 'given', 'manual', 'unrouted')),
            route_note text,
            snap_distance_m real,
            reporter_name text,
            reporter_phone varchar(32),
            text text,
            received_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            geom geometry(Point, 4326) GENERATED ALWAYS AS (
                CASE WHEN lon IS NOT NULL THEN ST_SetSRID(ST_MakePoint(lon, lat), 4326) END
            ) STORED,
            CONSTRAINT event_source_key UNIQUE (source, source_id),
            CONSTRAINT event_routed CHECK ((route = 'unrouted') = (grid_code IS NULL))
        );
        -- Window scans per grid (incremental colours) and over the whole city (full recompute).
        CREATE INDEX event_grid_time ON event (grid_code, reported_at);
        CREATE INDEX event_time ON event (reported_at);
        CREATE INDEX event_unresolved ON event (grid_code)
            WHERE status IN ('open', 'in_progress');
        CREATE INDEX event_unrouted ON event (id) WHERE route = 'unrouted';
        CREATE INDEX event_geom ON event USING gist (geom);

        CREATE TABLE event_status_change (
            id bigserial PRIMARY KEY,
            event_id bigint NOT NULL REFERENCES event(id) ON DELETE CASCADE,
            old_status varchar(11) NOT NULL,
            new_status varchar(11) NOT NULL,
            changed_by text NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX event_status_change_event ON event_status_change (event_id);

        -- One row per re-route run after a boundary change.
        CREATE TABLE event_reroute (
            id serial PRIMARY KEY,
            from_versions integer[] NOT NULL,
            to_version integer NOT NULL REFERENCES grid_version(id),
            open_events integer NOT NULL,
            moved integer NOT NULL,
            unchanged integer NOT NULL,
            became_unrouted integer NOT NULL,
            became_routed integer NOT NULL,
            ran_at timestamptz NOT NULL DEFAULT now()
        );
        -- Which event moved from where to where in a re-route.
        CREATE TABLE event_reroute_move (
            reroute_id integer NOT NULL REFERENCES event_reroute(id) ON DELETE CASCADE,
            event_id bigint NOT NULL REFERENCES event(id) ON DELETE CASCADE,
            old_code varchar(15),
            new_code varchar(15),
            old_version integer,
            PRIMARY KEY (reroute_id, event_id)
        );

        ALTER TABLE grid_colour
            ADD COLUMN computed_colour varchar(6) NOT NULL DEFAULT 'blue'
                CHECK (computed_colour IN ('red', 'yellow', 'blue')),
            ADD COLUMN red_children integer NOT NULL DEFAULT 0,
            ADD COLUMN yellow_children integer NOT NULL DEFAULT 0,
            ADD COLUMN blue_children integer NOT NULL DEFAULT 0,
            ADD COLUMN rules_version text NOT NULL DEFAULT '';
        ALTER TABLE layer_state
            ADD COLUMN rules_version text NOT NULL DEFAULT '',
            ADD COLUMN computed_as_of timestamptz;

        -- Event heat: counts per small grid and category in the 7- and 30-day windows.
        CREATE TABLE grid_heat (
            code varchar(15) NOT NULL,
            category varchar(16) NOT NULL,
            events_7d integer NOT NULL,
            events_30d integer NOT NULL,
            PRIMARY KEY (code, category)
        );

        CREATE TABLE colour_pin (
            id serial PRIMARY KEY,
            code varchar(15) NOT NULL,
            colour varchar(6) NOT NULL CHECK (colour IN ('red', 'yellow', 'blue')),
            reason text NOT NULL CHECK (length(reason) > 0),
            pinned_by text NOT NULL,
            pinned_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            released_at timestamptz,
            released_by text,
            CHECK (expires_at > pinned_at)
        );
        CREATE INDEX colour_pin_live ON colour_pin (code) WHERE released_at IS NULL;

        CREATE TABLE colour_change (
            id bigserial PRIMARY KEY,
            code varchar(15) NOT NULL,
            level varchar(6) NOT NULL,
            old_colour varchar(6),
            new_colour varchar(6) NOT NULL,
            why text NOT NULL,
            score double precision,
            rules_version text NOT NULL,
            as_of timestamptz NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX colour_change_code ON colour_change (code, id);

        CREATE TABLE layer_warning (
            id bigserial PRIMARY KEY,
            code varchar(15) NOT NULL,
            category varchar(16) NOT NULL,
            window_start timestamptz NOT NULL,
            window_end timestamptz NOT NULL,
            warn_day date NOT NULL,
            observed integer NOT NULL,
            baseline_events integer NOT NULL,
            baseline_days integer NOT NULL,
            expected double precision NOT NULL,
            p_value double precision NOT NULL,
            rule text NOT NULL,
            rules_version text NOT NULL,
            raised_at timestamptz NOT NULL DEFAULT now(),
            -- One warning per grid, category and day; later evaluations that day update it.
            CONSTRAINT layer_warning_once UNIQUE (code, category, warn_day)
        );
        CREATE INDEX layer_warning_day ON layer_warning (warn_day);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS layer_warning, colour_change, colour_pin, grid_heat,
            event_reroute_move, event_reroute, event_status_change, event CASCADE;
        ALTER TABLE layer_state DROP COLUMN IF EXISTS rules_version,
            DROP COLUMN IF EXISTS computed_as_of;
        ALTER TABLE grid_colour DROP COLUMN IF EXISTS computed_colour,
            DROP COLUMN IF EXISTS red_children, DROP COLUMN IF EXISTS yellow_children,
            DROP COLUMN IF EXISTS blue_children, DROP COLUMN IF EXISTS rules_version;
        """
    )
