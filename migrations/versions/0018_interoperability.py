"""interoperability: the `interface` role, the HL7 v2 messages received and the hospital visits

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 16:40:00

`users.role` gains `interface` (the hospital interface engine's service account): its CHECK
constraint (`ck_users_user_role`, from 0001) is replaced. On SQLite that is a batch rebuild of
`users`, which carries no triggers (0009's sync triggers are on other tables) and whose
referencing rows survive (foreign keys are off during migrations and checked after).
`hl7_messages` keeps each received message's control id and ACK (idempotency on MSH-10);
`hospital_visits` the ED registrations, admissions and discharges the ADT feed reports.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

ROLES_BEFORE = ('coach', 'ed_nurse', 'clinic_staff', 'admin')
ROLES_AFTER = ROLES_BEFORE + ('interface',)


#: The outcomes report's new facts: the first return to the hospital after the discharge, and the
#: first for an overdose (a new fingerprint recounts every stored fact after this migration).
REPORT_MS_COLUMNS = ('revisit', 'overdose_revisit')
#: A hospital visit feeds the change feed under its patient (no episode): the report recounts
#: every episode of the patient (a return counts for the episodes discharged before it). The
#: phones' sync reads only the entities it knows, so it never sees these rows.
FEED_OPERATIONS = ("INSERT", "UPDATE")


def _feed_triggers():
    for operation in FEED_OPERATIONS:
        name = f"sync_feed_hospital_visits_{operation.lower()}"
        insert = ("INSERT INTO sync_changes (entity, entity_id, episode_id, patient_id, was_status, was_level, "
                  "was_coach_id) VALUES ('hospital_visit', NEW.id, NULL, NEW.patient_id, NULL, NULL, NULL);")
        yield name, insert, operation


def _role_check(roles):
    return "role IN (" + ", ".join(f"'{r}'" for r in roles) + ")"


def _replace_role_check(roles):
    with op.batch_alter_table('users', recreate='always' if op.get_context().dialect.name == 'sqlite' else 'auto') \
            as batch:
        batch.drop_constraint(op.f('ck_users_user_role'), type_='check')
        batch.create_check_constraint('user_role', _role_check(roles))


def upgrade():
    _replace_role_check(ROLES_AFTER)
    op.create_table('hl7_messages',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('sender', sa.String(length=200), nullable=False),
    sa.Column('control_id', sa.String(length=200), nullable=False),
    sa.Column('message_type', sa.String(length=40), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_by_id', sa.Uuid(), nullable=True),
    sa.Column('outcome', sa.String(length=30), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=True),
    sa.Column('ack', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_hl7_messages_patient_id_patients')),
    sa.ForeignKeyConstraint(['received_by_id'], ['users.id'], name=op.f('fk_hl7_messages_received_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hl7_messages')),
    sa.UniqueConstraint('sender', 'control_id', name='uq_hl7_messages_sender_control_id')
    )
    op.create_table('hospital_visits',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('episode_id', sa.Uuid(), nullable=True),
    sa.Column('visit_number', sa.String(length=64), nullable=True),
    sa.Column('setting', sa.String(length=30), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('discharged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disposition', sa.String(length=30), nullable=True),
    sa.Column('overdose', sa.Boolean(), nullable=False),
    sa.Column('back_in_ed', sa.Boolean(), nullable=False),
    sa.Column('task_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_hospital_visits_episode_id_episodes')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_hospital_visits_patient_id_patients')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_hospital_visits_task_id_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hospital_visits'))
    )
    op.create_index('ix_hospital_visits_episode_back', 'hospital_visits', ['episode_id', 'back_in_ed', 'registered_at'])
    op.create_index('ix_hospital_visits_patient_registered', 'hospital_visits', ['patient_id', 'registered_at'])
    for column in REPORT_MS_COLUMNS:
        op.add_column('report_episode_facts', sa.Column(column, sa.BigInteger(), nullable=True))
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, insert, operation in _feed_triggers():
        if postgresql:
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                       f"BEGIN {insert} RETURN NULL; END $$")
            op.execute(f"CREATE TRIGGER {name} AFTER {operation} ON hospital_visits FOR EACH ROW "
                       f"EXECUTE FUNCTION {name}()")
        else:
            op.execute(f"CREATE TRIGGER {name} AFTER {operation} ON hospital_visits BEGIN {insert} END")


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, _, _ in _feed_triggers():
        op.execute(f"DROP TRIGGER {name}" + (" ON hospital_visits" if postgresql else ""))
        if postgresql:
            op.execute(f"DROP FUNCTION {name}()")
    for column in REPORT_MS_COLUMNS:
        op.drop_column('report_episode_facts', column)
    op.drop_index('ix_hospital_visits_patient_registered', table_name='hospital_visits')
    op.drop_index('ix_hospital_visits_episode_back', table_name='hospital_visits')
    op.drop_table('hospital_visits')
    op.drop_table('hl7_messages')
    if op.get_bind().execute(sa.text("SELECT count(*) FROM users WHERE role = 'interface'")).scalar():
        raise RuntimeError("interface accounts exist: the role cannot be removed while they do")
    _replace_role_check(ROLES_BEFORE)
