"""Reports to funders and grant audits (issue 17): grants and the pledges
tagged with them, member projects' deployment and development countries (DPG
Standard screening records), and stored public report figures.

On this branch it follows 0015; the lead re-chains it when merging.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('grant_tag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('ends_on >= starts_on', name=op.f('ck_grant_tag_grant_period_valid')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_grant_tag_created_by_id_user_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_grant_tag_organisation_id_organisation'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grant_tag')),
    sa.UniqueConstraint('organisation_id', 'reference', name='uq_grant_tag_org_reference')
    )
    with op.batch_alter_table('grant_tag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_tag_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('grant_pledge',
    sa.Column('pledge_id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('tagged_by_id', sa.Integer(), nullable=False),
    sa.Column('tagged_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_tag.id'], name=op.f('fk_grant_pledge_grant_id_grant_tag'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pledge_id'], ['pledge.id'], name=op.f('fk_grant_pledge_pledge_id_pledge'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tagged_by_id'], ['user_account.id'], name=op.f('fk_grant_pledge_tagged_by_id_user_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('pledge_id', name=op.f('pk_grant_pledge'))
    )
    with op.batch_alter_table('grant_pledge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_pledge_grant_id'), ['grant_id'], unique=False)

    op.create_table('project_country',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_project_country_project_id_member_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'kind', 'country', name=op.f('pk_project_country'))
    )
    with op.batch_alter_table('project_country', schema=None) as batch_op:
        batch_op.create_index('ix_project_country_kind_country', ['kind', 'country'], unique=False)

    op.create_table('report_snapshot',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('computed_at', sa.DateTime(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_report_snapshot'))
    )


def downgrade():
    op.drop_table('report_snapshot')
    with op.batch_alter_table('project_country', schema=None) as batch_op:
        batch_op.drop_index('ix_project_country_kind_country')
    op.drop_table('project_country')
    with op.batch_alter_table('grant_pledge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_pledge_grant_id'))
    op.drop_table('grant_pledge')
    with op.batch_alter_table('grant_tag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_tag_organisation_id'))
    op.drop_table('grant_tag')
