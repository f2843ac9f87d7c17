"""The command role: command-centre staff who pin grid colours.

Revision ID: 0007
"""

from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE api_token DROP CONSTRAINT api_token_role_check,
            ADD CONSTRAINT api_token_role_check CHECK (
                role IN ('viewer', 'gridworker', 'planner', 'command', 'ingest', 'admin'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        UPDATE api_token SET revoked_at = coalesce(revoked_at, now()), role = 'viewer'
            WHERE role = 'command';
        ALTER TABLE api_token DROP CONSTRAINT api_token_role_check,
            ADD CONSTRAINT api_token_role_check CHECK (
                role IN ('viewer', 'gridworker', 'planner', 'ingest', 'admin'));
        """
    )
