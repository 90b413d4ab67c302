"""run safety: what an attempt sent, the evidence a create leaves, extraction order and a forward-only
cursor, and the write a quarantined refusal belongs to

Revision ID: 0003_run_safety
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = '0003_run_safety'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('wb_ledger', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('evidence', sa.JSON(), nullable=True))
        batch_op.create_index('ix_wb_ledger_result', ['kind', 'result_id'], unique=False)
    with op.batch_alter_table('wb_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extract_seq', sa.Integer(), nullable=True))
    with op.batch_alter_table('wb_sync_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cursor_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('extractions', sa.Integer(), nullable=True))
    with op.batch_alter_table('wb_quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('op_key', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('wb_quarantine', schema=None) as batch_op:
        batch_op.drop_column('op_key')
    with op.batch_alter_table('wb_sync_state', schema=None) as batch_op:
        batch_op.drop_column('extractions')
        batch_op.drop_column('cursor_seq')
    with op.batch_alter_table('wb_runs', schema=None) as batch_op:
        batch_op.drop_column('extract_seq')
    with op.batch_alter_table('wb_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_wb_ledger_result')
        batch_op.drop_column('evidence')
        batch_op.drop_column('sent')
