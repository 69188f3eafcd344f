"""audit patient index: a sealed event's patients are indexed by patient when the sequencer seals it

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 22:00:00

Until now `audit_event_patients` was indexed by patient as each event was written: a caseload
read touches 60 patients, whose index entries lie on 60 different pages, and writing them was
about 100 pages of the write-ahead log per read (a sixth of the request's time). From here the
request writes the event's patients in the event's order only (a few adjacent pages), and the
sequencer, which seals a second's events in one transaction, writes them by patient into
`audit_patient_index`: a patient read a hundred times in that second costs one page, not a
hundred. The index is filled here from the sealed events; it is append-only like the events.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit_patient_index",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["event_seq"], ["audit_events.seq"],
                                name=op.f("fk_audit_patient_index_event_seq_audit_events")),
        sa.PrimaryKeyConstraint("patient_id", "event_seq", name=op.f("pk_audit_patient_index")),
        sqlite_with_rowid=False,
    )
    op.execute("INSERT INTO audit_patient_index (patient_id, event_seq) "
               "SELECT p.patient_id, p.event_seq FROM audit_event_patients p "
               "JOIN audit_events e ON e.seq = p.event_seq WHERE e.chain_seq IS NOT NULL "
               "ORDER BY p.patient_id, p.event_seq")
    op.drop_index("ix_audit_event_patients_patient_id", table_name="audit_event_patients")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TRIGGER audit_patient_index_append_only BEFORE UPDATE OR DELETE ON audit_patient_index "
                   "FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()")
        op.execute("CREATE TRIGGER audit_patient_index_no_truncate BEFORE TRUNCATE ON audit_patient_index "
                   "FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_patient_index_no_{verb.lower()} BEFORE {verb} ON audit_patient_index "
                       "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END")


def downgrade():
    op.create_index("ix_audit_event_patients_patient_id", "audit_event_patients", ["patient_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_patient_index_append_only ON audit_patient_index")
        op.execute("DROP TRIGGER IF EXISTS audit_patient_index_no_truncate ON audit_patient_index")
    op.drop_table("audit_patient_index")
