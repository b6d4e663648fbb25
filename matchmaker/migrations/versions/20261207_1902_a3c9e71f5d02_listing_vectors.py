"""listing vectors in the database (vectors, their sequence, embedding models)

Revision ID: a3c9e71f5d02
Revises: 7f33616c6f71
Create Date: 2026-12-07 18:45:00.000000

"""
from alembic import op
import sqlalchemy as sa

import matchmaker.core.time


# revision identifiers, used by Alembic.
revision = 'a3c9e71f5d02'
down_revision = '7f33616c6f71'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('listing_vectors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('listing_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.Column('text_hash', sa.String(length=64), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('lang', sa.String(length=16), nullable=True),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=True),
    sa.Column('query_vector', sa.LargeBinary(), nullable=True),
    sa.Column('sentence_count', sa.Integer(), nullable=False),
    sa.Column('sentences', sa.LargeBinary(), nullable=True),
    sa.Column('written_at', matchmaker.core.time.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('need', 'capability')", name=op.f('ck_listing_vectors_known_kind')),
    sa.CheckConstraint('removed OR (vector IS NOT NULL AND query_vector IS NOT NULL AND sentences IS NOT NULL'
                       ' AND text IS NOT NULL AND lang IS NOT NULL)',
                       name=op.f('ck_listing_vectors_live_row_complete')),
    sa.CheckConstraint('dim > 0 AND sentence_count >= 0', name=op.f('ck_listing_vectors_sizes_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_listing_vectors')),
    sa.UniqueConstraint('model_id', 'kind', 'listing_id', name='uq_listing_vectors_model_listing')
    )
    with op.batch_alter_table('listing_vectors', schema=None) as batch_op:
        batch_op.create_index('ix_listing_vectors_model_seq', ['model_id', 'seq'], unique=True)

    op.create_table('vector_sequence',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_vector_sequence_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vector_sequence'))
    )
    op.execute("INSERT INTO vector_sequence (id, value) VALUES (1, 0)")

    op.create_table('vector_models',
    sa.Column('model_id', sa.String(length=300), nullable=False),
    sa.Column('spec', sa.String(length=300), nullable=False),
    sa.Column('started_at', matchmaker.core.time.UTCDateTime(timezone=True), nullable=False),
    sa.Column('complete_at', matchmaker.core.time.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('model_id', name=op.f('pk_vector_models'))
    )


def downgrade():
    op.drop_table('vector_models')
    op.drop_table('vector_sequence')
    with op.batch_alter_table('listing_vectors', schema=None) as batch_op:
        batch_op.drop_index('ix_listing_vectors_model_seq')
    op.drop_table('listing_vectors')
