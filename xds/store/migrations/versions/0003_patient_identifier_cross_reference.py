"""Patient identifier cross-reference (PIX Manager): persons, identifiers, history, notification outbox.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('mpi_event',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.String(length=14), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('domain', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=256), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=True),
    sa.Column('other_domain', sa.String(length=64), nullable=True),
    sa.Column('other_value', sa.String(length=256), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mpi_event'))
    )
    with op.batch_alter_table('mpi_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mpi_event_domain_value'), ['domain', 'value'], unique=False)

    op.create_table('mpi_identifier',
    sa.Column('domain', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=256), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=True),
    sa.Column('merged_into', sa.String(length=256), nullable=True),
    sa.Column('family', sa.String(length=256), nullable=True),
    sa.Column('given', sa.String(length=256), nullable=True),
    sa.Column('birth_date', sa.String(length=14), nullable=True),
    sa.Column('sex', sa.String(length=8), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('phone', sa.String(length=256), nullable=True),
    sa.Column('mothers_maiden_name', sa.String(length=256), nullable=True),
    sa.Column('match_key', sa.String(length=256), nullable=True),
    sa.Column('updated', sa.String(length=14), nullable=False),
    sa.PrimaryKeyConstraint('domain', 'value', name=op.f('pk_mpi_identifier'))
    )
    with op.batch_alter_table('mpi_identifier', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mpi_identifier_match_key'), ['match_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_mpi_identifier_person_id'), ['person_id'], unique=False)

    op.create_table('mpi_notification',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subscriber', sa.String(length=512), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('created', sa.String(length=14), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt', sa.String(length=14), nullable=False),
    sa.Column('delivered', sa.String(length=14), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mpi_notification'))
    )
    with op.batch_alter_table('mpi_notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mpi_notification_delivered_next_attempt'), ['delivered', 'next_attempt'], unique=False)

    op.create_table('mpi_person',
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('created', sa.String(length=14), nullable=False),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_mpi_person'))
    )



def downgrade() -> None:

    op.drop_table('mpi_person')
    with op.batch_alter_table('mpi_notification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mpi_notification_delivered_next_attempt'))

    op.drop_table('mpi_notification')
    with op.batch_alter_table('mpi_identifier', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mpi_identifier_person_id'))
        batch_op.drop_index(batch_op.f('ix_mpi_identifier_match_key'))

    op.drop_table('mpi_identifier')
    with op.batch_alter_table('mpi_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mpi_event_domain_value'))

    op.drop_table('mpi_event')

