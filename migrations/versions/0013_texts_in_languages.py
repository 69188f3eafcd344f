"""texts in the patient's language: templates per language, the language each text went in

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 08:40:00

A template's name is unique per language now (`check_in` in English and in Spanish). Each text
records the language it was written in and whether it fell back to English; the report's
stored facts carry the language too (their definitions' fingerprint changes with them, so the
next report recounts them all).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    # Names that now mean the answers to keywords: an older template of that name was never
    # checked as one, so it must not take over; it keeps its text under another name.
    op.execute("UPDATE message_templates SET name = name || ' (before 2026-12)' "
               "WHERE name IN ('opt_out_confirmation', 'opt_in_confirmation', 'help')")
    with op.batch_alter_table('message_templates') as batch:
        batch.add_column(sa.Column('language', sa.String(length=35), server_default='en', nullable=False))
        batch.drop_constraint('uq_message_templates_name', type_='unique')
        batch.create_unique_constraint(batch.f('uq_message_templates_name'), ['name', 'language'])
    # Plain ADD COLUMN (not a batch copy): the messages table keeps its change-feed triggers.
    op.add_column('messages', sa.Column('language', sa.String(length=35), nullable=True))
    op.add_column('messages', sa.Column('fell_back', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index('ix_messages_fell_back_claimed', 'messages', ['claimed_at'],
                    sqlite_where=sa.text('fell_back = 1'), postgresql_where=sa.text('fell_back'))
    op.add_column('report_episode_facts', sa.Column('language', sa.String(length=35), nullable=True))
    op.add_column('report_text_facts', sa.Column('language', sa.String(length=35), nullable=True))
    op.add_column('report_text_facts', sa.Column('fell_back', sa.Boolean(), server_default=sa.false(),
                                                 nullable=False))


def downgrade():
    op.drop_column('report_text_facts', 'fell_back')
    op.drop_column('report_text_facts', 'language')
    op.drop_column('report_episode_facts', 'language')
    op.drop_index('ix_messages_fell_back_claimed', table_name='messages')
    op.drop_column('messages', 'fell_back')
    op.drop_column('messages', 'language')
    with op.batch_alter_table('message_templates') as batch:
        batch.drop_constraint('uq_message_templates_name', type_='unique')
        batch.create_unique_constraint(batch.f('uq_message_templates_name'), ['name'])
        batch.drop_column('language')
