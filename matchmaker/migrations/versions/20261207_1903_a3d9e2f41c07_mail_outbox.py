"""mail outbox: mail_messages, written in the causing transaction, sent by a runner with retries

Revision ID: a3d9e2f41c07
Revises: a3c9e71f5d02
Create Date: 2026-12-07 19:00:00

"""
from alembic import op
import sqlalchemy as sa

import matchmaker.core.time


# revision identifiers, used by Alembic.
revision = 'a3d9e2f41c07'
down_revision = 'a3c9e71f5d02'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('mail_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('to_addr', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', matchmaker.core.time.UTCDateTime(timezone=True), nullable=False),
    sa.Column('available_at', matchmaker.core.time.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', matchmaker.core.time.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=120), nullable=True),
    sa.Column('sent_at', matchmaker.core.time.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_mail_messages_attempts_not_negative')),
    sa.CheckConstraint('sent_at IS NULL OR claimed_by IS NOT NULL', name=op.f('ck_mail_messages_sent_by_a_claimant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_messages')),
    sa.UniqueConstraint('message_id', name=op.f('uq_mail_messages_message_id'))
    )
    with op.batch_alter_table('mail_messages', schema=None) as batch_op:
        batch_op.create_index('ix_mail_messages_pending', ['sent_at', 'available_at'], unique=False)


def downgrade():
    with op.batch_alter_table('mail_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_messages_pending')

    op.drop_table('mail_messages')
