"""Repository documents: (repositoryUniqueId, uniqueId) -> stored bytes.

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('repository_document',
    sa.Column('repository_unique_id', sa.String(length=64), nullable=False),
    sa.Column('document_unique_id', sa.String(length=256), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('sha1', sa.String(length=40), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('mime_type', sa.String(length=256), nullable=False),
    sa.Column('created', sa.String(length=14), nullable=False),
    sa.PrimaryKeyConstraint('repository_unique_id', 'document_unique_id', name=op.f('pk_repository_document'))
    )
    with op.batch_alter_table('repository_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repository_document_sha256'), ['sha256'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('repository_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repository_document_sha256'))

    op.drop_table('repository_document')

