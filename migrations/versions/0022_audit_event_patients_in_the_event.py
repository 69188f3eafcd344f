"""audit event patients in the event: an event's patients are written in its own row

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 07:00:00

Until now an event's patients were rows of `audit_event_patients`, one per patient, each with a
primary-key entry and a foreign-key check of its event: a caseload read wrote 61 rows, and the
patients were a third of the PostgreSQL time of the read (0.38 ms of which 0.3 for the patients,
measured with their statement prepared). From here they are a column of the event,
`audit_events.patient_ids` (PostgreSQL: `uuid[]`; SQLite: a JSON array of the ids as SQLite's
Uuid columns hold them, 32 hex digits), written by the event's own INSERT: 0.14 ms.

The patients of every existing event move into its row, in id order, and the table is dropped:
one place to read them from. No hash changes (an event's hash covers its patients' ids, not
where they are stored); `audit verify` checks the chain as before. Sealed events are otherwise
unchangeable, so the append-only guard is lifted for this one statement and put back, on SQLite
with the new column among those sealing must leave as they are. With the patients in the row,
nobody can add one to an event after it was written: the guard refuses any change to it but
its seal. (On SQLite the column is JSON text, read by Python for the hash and by SQLite for the
index: `audit verify` also reports any sealed event whose text is not in the form written here.)

Plan a maintenance window: the migration rewrites every event that touched a patient, holding
the events table's lock until it commits, so requests (each writes an audit event) wait for it.
Here 168,000 events (10 million patient rows) took 5 s on PostgreSQL.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

#: Every column of audit_events that sealing must leave as it is (0019's, with the patients).
CONTENT_COLUMNS = ("seq", "id", "occurred_at", "actor_id", "actor_username", "actor_role", "device_session_id",
                   "action", "status_code", "resource_type", "resource_id", "request_id", "client_ip", "details")


def _sqlite_guard(columns) -> None:
    changed = " OR ".join(f"NEW.{column} IS NOT OLD.{column}" for column in columns)
    op.execute("CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
               f"WHEN OLD.chain_seq IS NOT NULL OR NEW.chain_seq IS NULL OR {changed} "
               "BEGIN SELECT RAISE(ABORT, 'audit events are append-only (an event is sealed once, "
               "and nothing else changes)'); END")


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("audit_events", sa.Column("patient_ids", postgresql.ARRAY(sa.Uuid()), nullable=True))
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        op.execute("UPDATE audit_events SET patient_ids = p.ids FROM (SELECT event_seq, "
                   "array_agg(patient_id ORDER BY patient_id) AS ids FROM audit_event_patients GROUP BY event_seq) p "
                   "WHERE audit_events.seq = p.event_seq")
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
    else:
        op.add_column("audit_events", sa.Column("patient_ids", sa.Text(), nullable=True))
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute("UPDATE audit_events SET patient_ids = (SELECT json_group_array(patient_id) FROM "
                   "(SELECT patient_id FROM audit_event_patients WHERE event_seq = audit_events.seq "
                   "ORDER BY patient_id)) WHERE seq IN (SELECT event_seq FROM audit_event_patients)")
        _sqlite_guard((*CONTENT_COLUMNS, "patient_ids"))
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_event_patients_no_{verb}")
    op.drop_table("audit_event_patients")


def downgrade():
    op.create_table(
        "audit_event_patients",
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["event_seq"], ["audit_events.seq"],
                                name=op.f("fk_audit_event_patients_event_seq_audit_events")),
        sa.PrimaryKeyConstraint("event_seq", "patient_id", name=op.f("pk_audit_event_patients")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("INSERT INTO audit_event_patients (event_seq, patient_id) "
                   "SELECT seq, unnest(patient_ids) FROM audit_events WHERE patient_ids IS NOT NULL")
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        op.drop_column("audit_events", "patient_ids")
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        op.execute("CREATE TRIGGER audit_event_patients_append_only BEFORE UPDATE OR DELETE ON audit_event_patients "
                   "FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()")
        op.execute("CREATE TRIGGER audit_event_patients_no_truncate BEFORE TRUNCATE ON audit_event_patients "
                   "FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change()")
        return
    op.execute("INSERT INTO audit_event_patients (event_seq, patient_id) SELECT audit_events.seq, value "
               "FROM audit_events, json_each(audit_events.patient_ids) WHERE patient_ids IS NOT NULL")
    op.execute("DROP TRIGGER audit_events_no_update")
    op.drop_column("audit_events", "patient_ids")
    _sqlite_guard(CONTENT_COLUMNS)
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER audit_event_patients_no_{verb.lower()} BEFORE {verb} ON audit_event_patients "
                   "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END")
