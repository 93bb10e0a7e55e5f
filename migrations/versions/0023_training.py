"""The training path to certification (issue 19): training items, project
mentors, each project's training rule, training claims, mentor reviews and
the certifications earned through training. New tables only.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('project_mentor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('named_by_id', sa.Integer(), nullable=True),
    sa.Column('named_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['named_by_id'], ['user_account.id'], name=op.f('fk_project_mentor_named_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_project_mentor_project_id_member_project'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_project_mentor_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_mentor')),
    sa.UniqueConstraint('project_id', 'user_id', name='uq_project_mentor_project_id_user_id')
    )
    op.create_index(op.f('ix_project_mentor_project_id'), 'project_mentor', ['project_id'], unique=False)
    op.create_table('training_rule',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('merges_required', sa.Integer(), nullable=False),
    sa.Column('mentors_required', sa.Integer(), nullable=False),
    sa.Column('trainee_percent', sa.Integer(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('mentors_required BETWEEN 1 AND 10', name=op.f('ck_training_rule_mentors_range')),
    sa.CheckConstraint('merges_required BETWEEN 1 AND 50', name=op.f('ck_training_rule_merges_range')),
    sa.CheckConstraint('trainee_percent BETWEEN 1 AND 100', name=op.f('ck_training_rule_trainee_percent_range')),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_training_rule_project_id_member_project'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'], name=op.f('fk_training_rule_updated_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_training_rule'))
    )
    op.create_table('earned_certification',
    sa.Column('certification_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('merges', sa.Integer(), nullable=False),
    sa.Column('mentors', sa.Integer(), nullable=False),
    sa.Column('earned_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_reason', sa.Text(), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['certification_id'], ['certification.id'], name=op.f('fk_earned_certification_certification_id_certification'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_earned_certification_project_id_member_project'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['user_account.id'], name=op.f('fk_earned_certification_revoked_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_earned_certification_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('certification_id', name=op.f('pk_earned_certification'))
    )
    op.create_index(op.f('ix_earned_certification_project_id'), 'earned_certification', ['project_id'], unique=False)
    op.create_table('training_item',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('marked_by_id', sa.Integer(), nullable=True),
    sa.Column('marked_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['backlog_item.id'], name=op.f('fk_training_item_item_id_backlog_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['marked_by_id'], ['user_account.id'], name=op.f('fk_training_item_marked_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('item_id', name=op.f('pk_training_item'))
    )
    op.create_table('mentor_review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('mentor_id', sa.Integer(), nullable=False),
    sa.Column('verdict', sa.Enum('approved', 'changes_requested', name='reviewverdict', native_enum=False, length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('submitted_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], name=op.f('fk_mentor_review_claim_id_claim'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mentor_id'], ['user_account.id'], name=op.f('fk_mentor_review_mentor_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mentor_review')),
    sa.UniqueConstraint('external_id', name=op.f('uq_mentor_review_external_id'))
    )
    op.create_index('ix_mentor_review_claim_submitted', 'mentor_review', ['claim_id', 'submitted_at'], unique=False)
    op.create_table('training_claim',
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('trainee_id', sa.Integer(), nullable=False),
    sa.Column('mentor_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], name=op.f('fk_training_claim_claim_id_claim'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mentor_id'], ['user_account.id'], name=op.f('fk_training_claim_mentor_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_training_claim_project_id_member_project'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trainee_id'], ['user_account.id'], name=op.f('fk_training_claim_trainee_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('claim_id', name=op.f('pk_training_claim'))
    )
    op.create_index('ix_training_claim_trainee_project', 'training_claim', ['trainee_id', 'project_id'], unique=False)


def downgrade():
    op.drop_index('ix_training_claim_trainee_project', table_name='training_claim')
    op.drop_table('training_claim')
    op.drop_index('ix_mentor_review_claim_submitted', table_name='mentor_review')
    op.drop_table('mentor_review')
    op.drop_table('training_item')
    op.drop_index(op.f('ix_earned_certification_project_id'), table_name='earned_certification')
    op.drop_table('earned_certification')
    op.drop_table('training_rule')
    op.drop_index(op.f('ix_project_mentor_project_id'), table_name='project_mentor')
    op.drop_table('project_mentor')
