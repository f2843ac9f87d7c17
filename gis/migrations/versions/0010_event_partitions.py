"""Events partitioned by month of reported_at; the idempotency key moves to ``event_key``.

A unique constraint on a partitioned table must contain the partition key, so (source,
source_id) cannot stay unique on ``event`` itself. ``event_key`` holds it (one small row per
event: the key, the event's id and its reported_at), and the tables that pointed at event(id)
point at event_key(event_id) instead. Existing events are copied over with their ids; the id
sequence goes on. Partitions: every Beijing month holding events, and last month to three months
ahead, plus a DEFAULT partition so that an odd date is never lost
(gis/events/partitions.py keeps them current afterwards).

Revision ID: 0010
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Every column but the generated point, in table order.
_COLUMNS = """id, source, source_id, category, severity, status, reported_at, due_at, input_crs,
    input_lon, input_lat, lon, lat, grid_code, grid_version, route, route_note, snap_distance_m,
    reporter_name, reporter_phone, text, received_at, updated_at"""

_EVENT_TABLE = """
CREATE TABLE event (
    id bigint NOT NULL DEFAULT nextval('event_id_seq'),
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
    grid_code varchar(15),
    grid_version integer,
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
    CONSTRAINT event_routed CHECK ((route = 'unrouted') = (grid_code IS NULL))
)
"""

_EVENT_INDEXES = """
CREATE INDEX event_grid_time ON event (grid_code, reported_at);
CREATE INDEX event_time ON event (reported_at);
CREATE INDEX event_unresolved ON event (grid_code) WHERE status IN ('open', 'in_progress');
CREATE INDEX event_unrouted ON event (id) WHERE route = 'unrouted';
CREATE INDEX event_geom ON event USING gist (geom);
"""

# One partition per Beijing month holding events, and from last month (late reports) to three
# months ahead; an odd old date gets its month, not every month since.
_MONTHLY_PARTITIONS = """
DO $$
DECLARE
    m timestamp;
BEGIN
    FOR m IN
        SELECT DISTINCT date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai')
        FROM event_old
        UNION
        SELECT generate_series(
            date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') - interval '1 month',
            date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') + interval '3 months',
            interval '1 month')
        ORDER BY 1
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF event FOR VALUES FROM (%L) TO (%L)',
            'event_' || to_char(m, 'YYYY_MM'),
            (m AT TIME ZONE 'Asia/Shanghai')::text,
            ((m + interval '1 month') AT TIME ZONE 'Asia/Shanghai')::text);
    END LOOP;
END
$$;
"""


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE event_status_change DROP CONSTRAINT event_status_change_event_id_fkey;
        ALTER TABLE event_reroute_move DROP CONSTRAINT event_reroute_move_event_id_fkey;
        ALTER TABLE event RENAME TO event_old;
        ALTER INDEX event_pkey RENAME TO event_old_pkey;
        ALTER TABLE event_old DROP CONSTRAINT event_source_key;
        DROP INDEX event_grid_time, event_time, event_unresolved, event_unrouted, event_geom;

        {_EVENT_TABLE} PARTITION BY RANGE (reported_at);
        ALTER TABLE event ADD CONSTRAINT event_pkey PRIMARY KEY (id, reported_at);
        {_EVENT_INDEXES}
        {_MONTHLY_PARTITIONS}
        CREATE TABLE event_default PARTITION OF event DEFAULT;

        -- Idempotency across partitions; the id is given here and the event row takes it.
        CREATE TABLE event_key (
            source varchar(16) NOT NULL,
            source_id varchar(64) NOT NULL,
            event_id bigint NOT NULL DEFAULT nextval('event_id_seq'),
            reported_at timestamptz NOT NULL,
            CONSTRAINT event_key_pkey PRIMARY KEY (source, source_id),
            CONSTRAINT event_key_event_id_key UNIQUE (event_id)
        );

        INSERT INTO event ({_COLUMNS}) SELECT {_COLUMNS} FROM event_old;
        INSERT INTO event_key (source, source_id, event_id, reported_at)
            SELECT source, source_id, id, reported_at FROM event_old;

        ALTER SEQUENCE event_id_seq OWNED BY event.id;
        DROP TABLE event_old;
        ALTER TABLE event_status_change ADD CONSTRAINT event_status_change_event_id_fkey
            FOREIGN KEY (event_id) REFERENCES event_key(event_id) ON DELETE CASCADE;
        ALTER TABLE event_reroute_move ADD CONSTRAINT event_reroute_move_event_id_fkey
            FOREIGN KEY (event_id) REFERENCES event_key(event_id) ON DELETE CASCADE;
        ANALYZE event;
        ANALYZE event_key;
        """
    )


def downgrade() -> None:
    # Back to one plain table; every event and its history is kept. Refused (a unique
    # violation) only if an event row was written without its key, which ingest never does.
    op.execute(
        f"""
        ALTER TABLE event_status_change DROP CONSTRAINT event_status_change_event_id_fkey;
        ALTER TABLE event_reroute_move DROP CONSTRAINT event_reroute_move_event_id_fkey;
        ALTER TABLE event RENAME TO event_partitioned;
        ALTER INDEX event_pkey RENAME TO event_partitioned_pkey;
        ALTER INDEX event_grid_time RENAME TO event_partitioned_grid_time;
        ALTER INDEX event_time RENAME TO event_partitioned_time;
        ALTER INDEX event_unresolved RENAME TO event_partitioned_unresolved;
        ALTER INDEX event_unrouted RENAME TO event_partitioned_unrouted;
        ALTER INDEX event_geom RENAME TO event_partitioned_geom;

        {_EVENT_TABLE};
        INSERT INTO event ({_COLUMNS}) SELECT {_COLUMNS} FROM event_partitioned ORDER BY id;
        ALTER TABLE event ADD CONSTRAINT event_pkey PRIMARY KEY (id);
        ALTER TABLE event ADD CONSTRAINT event_source_key UNIQUE (source, source_id);
        {_EVENT_INDEXES}
        ALTER SEQUENCE event_id_seq OWNED BY event.id;
        DROP TABLE event_partitioned, event_key;
        ALTER TABLE event_status_change ADD CONSTRAINT event_status_change_event_id_fkey
            FOREIGN KEY (event_id) REFERENCES event(id) ON DELETE CASCADE;
        ALTER TABLE event_reroute_move ADD CONSTRAINT event_reroute_move_event_id_fkey
            FOREIGN KEY (event_id) REFERENCES event(id) ON DELETE CASCADE;
        ANALYZE event;
        """
    )
