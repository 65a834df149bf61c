"""Imaging Document Source: the DICOM instance index and per-study manifest state.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dicom_instance",
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("transfer_syntax_uid", sa.String(length=64), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("patient_issuer", sa.String(length=64), nullable=False),
        sa.Column("patient_name", sa.String(length=256), nullable=True),
        sa.Column("patient_birth_date", sa.String(length=8), nullable=True),
        sa.Column("patient_sex", sa.String(length=16), nullable=True),
        sa.Column("accession_number", sa.String(length=64), nullable=True),
        sa.Column("accession_issuer", sa.String(length=64), nullable=True),
        sa.Column("study_id", sa.String(length=16), nullable=True),
        sa.Column("study_date", sa.String(length=8), nullable=True),
        sa.Column("study_time", sa.String(length=16), nullable=True),
        sa.Column("study_description", sa.String(length=256), nullable=True),
        sa.Column("referring_physician", sa.String(length=256), nullable=True),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", sa.String(length=256), nullable=True),
        sa.Column("body_part", sa.String(length=16), nullable=True),
        sa.Column("laterality", sa.String(length=16), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("archive_url", sa.String(length=1024), nullable=True),
        sa.Column("received", sa.String(length=14), nullable=False),
        sa.PrimaryKeyConstraint("sop_instance_uid", name=op.f("pk_dicom_instance")),
    )
    op.create_index("ix_dicom_instance_study_instance_uid_series_instance_uid", "dicom_instance",
                    ["study_instance_uid", "series_instance_uid"])
    op.create_index("ix_dicom_instance_patient_issuer_patient_id", "dicom_instance",
                    ["patient_issuer", "patient_id"])
    op.create_index("ix_dicom_instance_accession_number", "dicom_instance", ["accession_number"])
    op.create_index("ix_dicom_instance_sha256", "dicom_instance", ["sha256"])
    op.create_table(
        "imaging_study",
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("published_revision", sa.Integer(), nullable=True),
        sa.Column("kos_sop_instance_uid", sa.String(length=64), nullable=True),
        sa.Column("kos_entry_uuid", sa.String(length=64), nullable=True),
        sa.Column("published", sa.String(length=14), nullable=True),
        sa.Column("patient_cx", sa.String(length=256), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("study_instance_uid", name=op.f("pk_imaging_study")),
    )


def downgrade() -> None:
    op.drop_table("imaging_study")
    op.drop_index("ix_dicom_instance_sha256", table_name="dicom_instance")
    op.drop_index("ix_dicom_instance_accession_number", table_name="dicom_instance")
    op.drop_index("ix_dicom_instance_patient_issuer_patient_id", table_name="dicom_instance")
    op.drop_index("ix_dicom_instance_study_instance_uid_series_instance_uid",
                  table_name="dicom_instance")
    op.drop_table("dicom_instance")
