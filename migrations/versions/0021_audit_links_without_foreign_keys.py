"""audit links without foreign keys: an event's patients and the index by patient no longer check each row's event

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 05:00:00

`audit_event_patients` (an event's patients, written with the event, in its transaction, with
the place the insert of the event returned) and `audit_patient_index` (the same pairs by
patient, written by the sequencer from the first in the transaction that seals their events)
checked each row's event by a foreign key as it was written: a lookup of the event per row.
On PostgreSQL that was 0.3 of the 0.7 ms a caseload read's 60 patients took to write, and it
tripled the sequencer's index write (8.3 -> 2.5 µs an entry, under load). Neither table is
ever updated or deleted from (their triggers refuse it), and `audit verify` checks the links:
each sealed event's patients are covered by its hash, the index is compared with them pair by
pair, and rows of either table whose event does not exist are counted. The rows are copied
unchanged.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

#: Each table: its foreign key, its primary key's columns in order, and its SQLite table options.
TABLES = {
    "audit_event_patients": ("fk_audit_event_patients_event_seq_audit_events", ("event_seq", "patient_id"), {}),
    "audit_patient_index": ("fk_audit_patient_index_event_seq_audit_events", ("patient_id", "event_seq"),
                            {"sqlite_with_rowid": False}),
}


def upgrade():
    for table in TABLES:
        if op.get_bind().dialect.name == "postgresql":
            op.drop_constraint(TABLES[table][0], table, type_="foreignkey")
        else:
            _rebuild_on_sqlite(table, foreign_key=False)


def downgrade():
    for table, (foreign_key, _, _) in TABLES.items():
        if op.get_bind().dialect.name == "postgresql":
            op.create_foreign_key(foreign_key, table, "audit_events", ["event_seq"], ["seq"])
        else:
            _rebuild_on_sqlite(table, foreign_key=True)


def _rebuild_on_sqlite(table: str, *, foreign_key: bool):
    """SQLite cannot drop or add a constraint: the table is made again beside the old one, the
    rows copied in their order, the old one dropped (which fires no trigger) and the new one
    renamed, with its append-only triggers made again."""
    name, key, options = TABLES[table]
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER {table}_no_{verb}")
    op.create_table(
        f"{table}_new",
        sa.Column(key[0], sa.BigInteger() if key[0] == "event_seq" else sa.Uuid(), nullable=False),
        sa.Column(key[1], sa.BigInteger() if key[1] == "event_seq" else sa.Uuid(), nullable=False),
        *([sa.ForeignKeyConstraint(["event_seq"], ["audit_events.seq"], name=name)] if foreign_key else []),
        sa.PrimaryKeyConstraint(*key, name=f"pk_{table}"),
        **options,
    )
    columns = ", ".join(key)
    op.execute(f"INSERT INTO {table}_new ({columns}) SELECT {columns} FROM {table} ORDER BY {columns}")
    op.drop_table(table)
    op.rename_table(f"{table}_new", table)
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                   "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END")
