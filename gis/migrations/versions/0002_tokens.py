"""API tokens with roles, hashed at rest.

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_token (
            id serial PRIMARY KEY,
            name text NOT NULL,
            role varchar(16) NOT NULL CHECK (
                role IN ('viewer', 'gridworker', 'planner', 'ingest', 'admin')),
            grid_code varchar(15),
            token_sha256 char(64) NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS api_token")
