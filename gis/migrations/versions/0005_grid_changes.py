"""Boundary change proposals: what a planner proposed, its check, impact, commit and roll-back.

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE grid_change (
            id serial PRIMARY KEY,
            kind varchar(12) NOT NULL,
            -- The grid version the planner drew on; a commit on any other version is refused.
            base_version integer NOT NULL REFERENCES grid_version(id),
            status varchar(12) NOT NULL DEFAULT 'proposed'
                CHECK (status IN ('proposed', 'invalid', 'committed', 'rolled_back')),
            reason text NOT NULL CHECK (length(reason) > 0),
            proposed_by text NOT NULL,
            proposed_at timestamptz NOT NULL DEFAULT now(),
            -- The proposed grids (GeoJSON features, EPSG:4326) and the codes to retire.
            features jsonb NOT NULL,
            retire text[] NOT NULL DEFAULT '{}',
            touched text[] NOT NULL,
            faults jsonb NOT NULL DEFAULT '[]',
            impact jsonb,
            committed_version integer REFERENCES grid_version(id),
            committed_by text,
            committed_at timestamptz,
            -- A roll-back is itself a change; it names the change it undoes.
            rollback_of integer REFERENCES grid_change(id),
            rolled_back_by integer REFERENCES grid_change(id)
        );
        CREATE INDEX grid_change_status ON grid_change (status, id);
        CREATE INDEX grid_code_history ON grid (code, version_low);
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS grid_code_history; DROP TABLE IF EXISTS grid_change")
