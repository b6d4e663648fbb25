"""need strong_match_notified_at

Revision ID: 5b1e0c9d7a21
Revises: 96a7112e06f8
Create Date: 2026-12-07 17:15:00.000000

"""
from alembic import op
import sqlalchemy as sa

import matchmaker.core.time


# revision identifiers, used by Alembic.
revision = '5b1e0c9d7a21'
down_revision = '96a7112e06f8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('strong_match_notified_at', matchmaker.core.time.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.drop_column('strong_match_notified_at')
