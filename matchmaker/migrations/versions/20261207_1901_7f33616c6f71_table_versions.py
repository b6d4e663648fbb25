"""table versions: one counter per table that committed writes move on (the shared caches key on them)

Revision ID: 7f33616c6f71
Revises: a3c9e1f27d64
Create Date: 2026-12-07 19:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7f33616c6f71'
down_revision = 'a3c9e1f27d64'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('table_versions',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_table_versions'))
    )


def downgrade():
    op.drop_table('table_versions')
