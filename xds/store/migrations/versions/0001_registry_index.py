"""Registry index: objects, their query columns, uniqueId claims, known patients.

Revision ID: 0001
Revises:
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('association',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('association_type', sa.String(length=256), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('xml', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_association'))
    )
    with op.batch_alter_table('association', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_association_source_id'), ['source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_association_target_id'), ['target_id'], unique=False)

    op.create_table('document_author',
    sa.Column('entry_id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('author_person', sa.Text(), nullable=False)
    )
    with op.batch_alter_table('document_author', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_author_entry_id'), ['entry_id'], unique=False)

    op.create_table('document_code',
    sa.Column('entry_id', sa.String(length=64), nullable=False),
    sa.Column('attribute', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=512), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.PrimaryKeyConstraint('entry_id', 'attribute', 'code', name=op.f('pk_document_code'))
    )
    op.create_table('document_entry',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=64), nullable=False),
    sa.Column('unique_id', sa.String(length=256), nullable=False),
    sa.Column('lid', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=40), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('repository_unique_id', sa.String(length=64), nullable=True),
    sa.Column('mime_type', sa.String(length=256), nullable=False),
    sa.Column('home', sa.String(length=256), nullable=True),
    sa.Column('creation_time', sa.String(length=14), nullable=True),
    sa.Column('service_start_time', sa.String(length=14), nullable=True),
    sa.Column('service_stop_time', sa.String(length=14), nullable=True),
    sa.Column('class_code', sa.String(length=512), nullable=True),
    sa.Column('type_code', sa.String(length=512), nullable=True),
    sa.Column('format_code', sa.String(length=512), nullable=True),
    sa.Column('practice_setting_code', sa.String(length=512), nullable=True),
    sa.Column('healthcare_facility_type_code', sa.String(length=512), nullable=True),
    sa.Column('submission_set_id', sa.String(length=64), nullable=False),
    sa.Column('xml', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_entry'))
    )
    with op.batch_alter_table('document_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_entry_lid'), ['lid'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_entry_patient_id_status_creation_time'), ['patient_id', 'status', 'creation_time'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_entry_unique_id'), ['unique_id'], unique=False)

    op.create_table('document_reference_id',
    sa.Column('entry_id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('value', sa.String(length=256), nullable=False)
    )
    with op.batch_alter_table('document_reference_id', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_reference_id_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_reference_id_value'), ['value'], unique=False)

    op.create_table('folder',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('unique_id', sa.String(length=256), nullable=False),
    sa.Column('lid', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('last_update_time', sa.String(length=14), nullable=False),
    sa.Column('home', sa.String(length=256), nullable=True),
    sa.Column('xml', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_folder'))
    )
    with op.batch_alter_table('folder', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_folder_patient_id_last_update_time'), ['patient_id', 'last_update_time'], unique=False)
        batch_op.create_index(batch_op.f('ix_folder_unique_id'), ['unique_id'], unique=True)

    op.create_table('folder_code',
    sa.Column('folder_id', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=512), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.PrimaryKeyConstraint('folder_id', 'code', name=op.f('pk_folder_code'))
    )
    op.create_table('patient',
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('merged_into', sa.String(length=256), nullable=True),
    sa.Column('created', sa.String(length=14), nullable=False),
    sa.PrimaryKeyConstraint('patient_id', name=op.f('pk_patient'))
    )
    op.create_table('submission_set',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('unique_id', sa.String(length=256), nullable=False),
    sa.Column('source_id', sa.String(length=256), nullable=False),
    sa.Column('submission_time', sa.String(length=14), nullable=False),
    sa.Column('content_type_code', sa.String(length=512), nullable=True),
    sa.Column('home', sa.String(length=256), nullable=True),
    sa.Column('xml', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submission_set'))
    )
    with op.batch_alter_table('submission_set', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_set_patient_id_submission_time'), ['patient_id', 'submission_time'], unique=False)
        batch_op.create_index(batch_op.f('ix_submission_set_unique_id'), ['unique_id'], unique=True)

    op.create_table('submission_set_author',
    sa.Column('submission_set_id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('author_person', sa.Text(), nullable=False)
    )
    with op.batch_alter_table('submission_set_author', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_set_author_submission_set_id'), ['submission_set_id'], unique=False)

    op.create_table('unique_id_claim',
    sa.Column('unique_id', sa.String(length=256), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('hash', sa.String(length=40), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('unique_id', name=op.f('pk_unique_id_claim'))
    )



def downgrade() -> None:

    op.drop_table('unique_id_claim')
    with op.batch_alter_table('submission_set_author', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_set_author_submission_set_id'))

    op.drop_table('submission_set_author')
    with op.batch_alter_table('submission_set', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_set_unique_id'))
        batch_op.drop_index(batch_op.f('ix_submission_set_patient_id_submission_time'))

    op.drop_table('submission_set')
    op.drop_table('patient')
    op.drop_table('folder_code')
    with op.batch_alter_table('folder', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_folder_unique_id'))
        batch_op.drop_index(batch_op.f('ix_folder_patient_id_last_update_time'))

    op.drop_table('folder')
    with op.batch_alter_table('document_reference_id', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_reference_id_value'))
        batch_op.drop_index(batch_op.f('ix_document_reference_id_entry_id'))

    op.drop_table('document_reference_id')
    with op.batch_alter_table('document_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_entry_unique_id'))
        batch_op.drop_index(batch_op.f('ix_document_entry_patient_id_status_creation_time'))
        batch_op.drop_index(batch_op.f('ix_document_entry_lid'))

    op.drop_table('document_entry')
    op.drop_table('document_code')
    with op.batch_alter_table('document_author', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_author_entry_id'))

    op.drop_table('document_author')
    with op.batch_alter_table('association', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_association_target_id'))
        batch_op.drop_index(batch_op.f('ix_association_source_id'))

    op.drop_table('association')

