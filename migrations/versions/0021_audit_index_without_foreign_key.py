"""audit index without foreign key: the sequencer's index by patient no longer checks each entry's event

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 05:00:00

`audit_patient_index` is derived: the sequencer writes it from `audit_event_patients` (whose
rows keep their foreign key to their event) in the transaction that seals those events, and
`audit verify` compares the two pair by pair and counts entries whose event does not exist.
The foreign key checked each entry's event again as it was written, which tripled the cost of
the sequencer's index write on PostgreSQL (8.3 -> 2.5 µs an entry, under load; a caseload read
is 60 entries). The entries are copied unchanged.

(`audit_event_patients` keeps its foreign key: without it, a row planted for the next event's
place would be sealed into that event, and its hash would vouch for an access nobody made.)
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

FOREIGN_KEY = "fk_audit_patient_index_event_seq_audit_events"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(FOREIGN_KEY, "audit_patient_index", type_="foreignkey")
    else:
        _rebuild_on_sqlite(foreign_key=False)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key(FOREIGN_KEY, "audit_patient_index", "audit_events", ["event_seq"], ["seq"])
    else:
        _rebuild_on_sqlite(foreign_key=True)


def _rebuild_on_sqlite(*, foreign_key: bool):
    """SQLite cannot drop or add a constraint: the table is made again beside the old one, the
    entries copied in their order, the old one dropped (which fires no trigger) and the new one
    renamed, with its append-only triggers made again."""
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER audit_patient_index_no_{verb}")
    op.create_table(
        "audit_patient_index_new",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        *([sa.ForeignKeyConstraint(["event_seq"], ["audit_events.seq"], name=FOREIGN_KEY)] if foreign_key else []),
        sa.PrimaryKeyConstraint("patient_id", "event_seq", name="pk_audit_patient_index"),
        sqlite_with_rowid=False,
    )
    op.execute("INSERT INTO audit_patient_index_new (patient_id, event_seq) "
               "SELECT patient_id, event_seq FROM audit_patient_index ORDER BY patient_id, event_seq")
    op.drop_table("audit_patient_index")
    op.rename_table("audit_patient_index_new", "audit_patient_index")
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER audit_patient_index_no_{verb.lower()} BEFORE {verb} ON audit_patient_index "
                   "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END")
