"""data version: one counter every committed write moves on (the page cache keys on it)

Revision ID: d41b8e6f2a90
Revises: c7f3a9d57c27
Create Date: 2026-12-01 07:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd41b8e6f2a90'
down_revision = 'c7f3a9d57c27'
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table('data_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_data_version_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_version'))
    )
    op.bulk_insert(table, [{'id': 1, 'n': 0}])


def downgrade():
    op.drop_table('data_version')
