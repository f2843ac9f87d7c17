"""Colour layer state: one row per grid with its red/yellow/blue colour, and a layer version.

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE grid_colour (
            code varchar(15) PRIMARY KEY,
            level varchar(6) NOT NULL,
            colour varchar(6) NOT NULL CHECK (colour IN ('red', 'yellow', 'blue')),
            score double precision NOT NULL DEFAULT 0,
            open_events integer NOT NULL DEFAULT 0,
            overdue_events integer NOT NULL DEFAULT 0,
            events_7d integer NOT NULL DEFAULT 0,
            events_30d integer NOT NULL DEFAULT 0,
            pinned boolean NOT NULL DEFAULT false,
            reason text,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        -- Bumped (and NOTIFY layer_version sent) whenever colours or heat change:
        -- tile caches key on (grid version, layer version).
        CREATE TABLE layer_state (
            id smallint PRIMARY KEY CHECK (id = 1),
            layer_version bigint NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO layer_state (id) VALUES (1);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS grid_colour, layer_state")
