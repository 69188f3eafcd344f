"""two people grant clinical access: a clinical role given by an admin waits for approval

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 08:50:00

Existing accounts stay active (their access was granted before the rule); from now on a
clinical role an admin gives is `pending` until a clinic-staff member other than the grantee
approves it.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch:
        # No CHECK constraint: SQLite's batch downgrade would copy it onto a table without the column.
        batch.add_column(sa.Column('access', sa.String(length=10), server_default='active', nullable=False))
        batch.add_column(sa.Column('access_granted_by_id', sa.Uuid(), nullable=True))
        batch.add_column(sa.Column('access_granted_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('access_approved_by_id', sa.Uuid(), nullable=True))
        batch.add_column(sa.Column('access_approved_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(batch.f('fk_users_access_granted_by_id_users'), 'users',
                                 ['access_granted_by_id'], ['id'])
        batch.create_foreign_key(batch.f('fk_users_access_approved_by_id_users'), 'users',
                                 ['access_approved_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('users') as batch:
        batch.drop_constraint(batch.f('fk_users_access_approved_by_id_users'), type_='foreignkey')
        batch.drop_constraint(batch.f('fk_users_access_granted_by_id_users'), type_='foreignkey')
        batch.drop_column('access_approved_at')
        batch.drop_column('access_approved_by_id')
        batch.drop_column('access_granted_at')
        batch.drop_column('access_granted_by_id')
        batch.drop_column('access')
