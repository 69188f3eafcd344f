"""audit sequencer: events are written unsealed, without a lock; the clock seals them into the chain

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 16:30:00

Until now every request locked the one chain head row to give its event the next place in the
hash chain. From here `audit_events.seq` is the event's insertion number, given by the database
without a lock (PostgreSQL: a sequence; SQLite: the rowid), and the chain lives in three new or
loosened columns set once, when the sequencer seals the event: `chain_seq` (its place in the
chain), `prev_hash` and `hash`. The existing chain is carried over unchanged: every event already
in it keeps its hash, and its place in the chain is its old `seq`.

The append-only guard becomes "sealed once": an UPDATE may only set those three columns on an
event that has none yet; everything else, and every sealed event, stays unchangeable; DELETE and
TRUNCATE stay refused. On SQLite the table is rebuilt (its key becomes the rowid), its triggers
recreated; `audit_event_patients` refers to `seq`, which keeps its values.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

#: Every column of audit_events that sealing must leave as it is.
CONTENT_COLUMNS = ("seq", "id", "occurred_at", "actor_id", "actor_username", "actor_role", "device_session_id",
                   "action", "status_code", "resource_type", "resource_id", "request_id", "client_ip", "details")


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()
    op.create_index("ix_audit_events_chain_seq", "audit_events", ["chain_seq"], unique=True)
    # The sequencer's work list: only the unsealed tail, however long the trail.
    op.create_index("ix_audit_events_unsealed", "audit_events", ["seq"],
                    postgresql_where=sa.text("chain_seq IS NULL"), sqlite_where=sa.text("chain_seq IS NULL"))


def _upgrade_postgresql():
    op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
    op.add_column("audit_events", sa.Column("chain_seq", sa.BigInteger(), nullable=True))
    op.execute("UPDATE audit_events SET chain_seq = seq")
    op.alter_column("audit_events", "prev_hash", nullable=True)
    op.alter_column("audit_events", "hash", nullable=True)
    op.create_check_constraint("sealed_whole", "audit_events",
                               "(chain_seq IS NULL) = (prev_hash IS NULL) AND (chain_seq IS NULL) = (hash IS NULL)")
    op.execute("CREATE SEQUENCE audit_events_seq_seq OWNED BY audit_events.seq")
    op.execute("SELECT setval('audit_events_seq_seq', COALESCE(MAX(seq), 0) + 1, false) FROM audit_events")
    op.execute("ALTER TABLE audit_events ALTER COLUMN seq SET DEFAULT nextval('audit_events_seq_seq')")
    op.execute("""
        CREATE FUNCTION audit_event_sealed_once() RETURNS trigger AS $$
        BEGIN
            IF TG_OP <> 'UPDATE' OR OLD.chain_seq IS NOT NULL OR NEW.chain_seq IS NULL
               OR (to_jsonb(NEW) - 'chain_seq' - 'prev_hash' - 'hash')
                  IS DISTINCT FROM (to_jsonb(OLD) - 'chain_seq' - 'prev_hash' - 'hash') THEN
                RAISE EXCEPTION 'audit events are append-only (an event is sealed once, and nothing else changes)';
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql
    """)
    op.execute("CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
               "FOR EACH ROW EXECUTE FUNCTION audit_event_sealed_once()")


def _upgrade_sqlite():
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    op.add_column("audit_events", sa.Column("chain_seq", sa.BigInteger(), nullable=True))
    op.execute("UPDATE audit_events SET chain_seq = seq")
    # (env.py turns foreign keys off around migrations: audit_event_patients refers to this table.)
    with op.batch_alter_table("audit_events", recreate="always") as batch_op:
        # INTEGER PRIMARY KEY: the rowid itself, given at insert.
        batch_op.alter_column("seq", type_=sa.Integer(), existing_nullable=False, autoincrement=True)
        batch_op.alter_column("prev_hash", existing_type=sa.String(64), nullable=True)
        batch_op.alter_column("hash", existing_type=sa.String(64), nullable=True)
        batch_op.create_check_constraint(
            "sealed_whole", "(chain_seq IS NULL) = (prev_hash IS NULL) AND (chain_seq IS NULL) = (hash IS NULL)")
    changed = " OR ".join(f"NEW.{column} IS NOT OLD.{column}" for column in CONTENT_COLUMNS)
    op.execute("CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
               f"WHEN OLD.chain_seq IS NOT NULL OR NEW.chain_seq IS NULL OR {changed} "
               "BEGIN SELECT RAISE(ABORT, 'audit events are append-only (an event is sealed once, "
               "and nothing else changes)'); END")
    op.execute("CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
               "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END")


def downgrade():
    """Only while every event is sealed at the place it was inserted (before 0019 the two were
    one column): run the sequencer first; events inserted out of order cannot go back."""
    bind = op.get_bind()
    moved = bind.exec_driver_sql(
        "SELECT count(*) FROM audit_events WHERE chain_seq IS NULL OR chain_seq <> seq").scalar()
    if moved:
        raise RuntimeError(f"cannot downgrade below 0019: {moved} audit events are unsealed or sealed at another "
                           "place than their insertion number (seal them, or restore a backup taken before 0019)")
    op.drop_index("ix_audit_events_unsealed", table_name="audit_events")
    op.drop_index("ix_audit_events_chain_seq", table_name="audit_events")
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_event_sealed_once()")
        op.execute("ALTER TABLE audit_events ALTER COLUMN seq DROP DEFAULT")
        op.execute("DROP SEQUENCE audit_events_seq_seq")
        op.drop_constraint("ck_audit_events_sealed_whole", "audit_events")
        op.alter_column("audit_events", "prev_hash", nullable=False)
        op.alter_column("audit_events", "hash", nullable=False)
        op.drop_column("audit_events", "chain_seq")
        op.execute("CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
                   "FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()")
        return
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    with op.batch_alter_table("audit_events", recreate="always") as batch_op:
        batch_op.drop_constraint(op.f("ck_audit_events_sealed_whole"), type_="check")
        batch_op.alter_column("seq", type_=sa.BigInteger(), existing_nullable=False, autoincrement=False)
        batch_op.drop_column("chain_seq")
        batch_op.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(64), nullable=False)
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                   "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END")
