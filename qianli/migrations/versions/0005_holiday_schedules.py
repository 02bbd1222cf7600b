"""holiday schedules imported after publication (issue 14)

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa
import qianli.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('holiday_schedules',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('company_id', sa.String(length=32), nullable=True),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('holidays', sa.JSON(), nullable=False),
    sa.Column('workdays', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('imported_by', sa.String(length=120), nullable=False),
    sa.Column('imported_at', qianli.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_holiday_schedules_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holiday_schedules'))
    )
    with op.batch_alter_table('holiday_schedules', schema=None) as batch_op:
        batch_op.create_index('ix_holiday_schedules_company_year', ['company_id', 'year'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('holiday_schedules', schema=None) as batch_op:
        batch_op.drop_index('ix_holiday_schedules_company_year')
    op.drop_table('holiday_schedules')
