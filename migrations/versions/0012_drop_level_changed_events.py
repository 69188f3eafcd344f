"""drop the `level_changed` episode events: the timeline shows each level change once

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-21 23:55:00

Each completed handoff wrote both a level period and a `level_changed` event, and the timeline
listed the change twice. The periods stay (they are the episode's `level_history`); the events
are no longer written, and the old ones go. A downgrade cannot bring them back, and needs not:
the same facts remain in the periods and in the handoff's `completed` event.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DELETE FROM episode_events WHERE kind = 'level_changed'")


def downgrade():
    pass
