"""Accounts: roles, verified forge identities, OAuth states, organisations,
implementor profiles, maintainers, invitations and maintainership claims.

Reviewed by hand. New NOT NULL columns on user_account get server defaults so
that existing rows upgrade.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('forge_identity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('forge', sa.String(length=20), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('forge_user_id', sa.BigInteger(), nullable=False),
    sa.Column('login', sa.String(length=255), nullable=False),
    sa.Column('verified_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_forge_identity_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_forge_identity')),
    sa.UniqueConstraint('host', 'forge_user_id', name='uq_forge_identity_host_forge_user_id')
    )
    with op.batch_alter_table('forge_identity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_forge_identity_user_id'), ['user_id'], unique=False)

    op.create_table('maintainer_invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['invited_by_id'], ['user_account.id'], name=op.f('fk_maintainer_invitation_invited_by_id_user_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_maintainer_invitation_project_id_member_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintainer_invitation')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_maintainer_invitation_token_hash'))
    )
    with op.batch_alter_table('maintainer_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintainer_invitation_project_id'), ['project_id'], unique=False)

    op.create_table('oauth_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('session_binding', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_oauth_state_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_state')),
    sa.UniqueConstraint('state_hash', name=op.f('uq_oauth_state_state_hash'))
    )
    with op.batch_alter_table('oauth_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_state_user_id'), ['user_id'], unique=False)

    op.create_table('organisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['user_account.id'], name=op.f('fk_organisation_owner_id_user_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisation')),
    sa.UniqueConstraint('slug', name=op.f('uq_organisation_slug'))
    )
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisation_owner_id'), ['owner_id'], unique=False)

    op.create_table('project_maintainer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('granted_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_project_maintainer_project_id_member_project'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_project_maintainer_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_maintainer')),
    sa.UniqueConstraint('project_id', 'user_id', name='uq_project_maintainer_project_user')
    )
    with op.batch_alter_table('project_maintainer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_maintainer_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_maintainer_user_id'), ['user_id'], unique=False)

    op.create_table('implementor_profile',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('skills', sa.JSON(), nullable=False),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('bio', sa.Text(), nullable=False),
    sa.Column('public_earnings', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_implementor_profile_organisation_id_organisation'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_implementor_profile_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_implementor_profile'))
    )
    op.create_table('maintainership_claim',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user_account.id'], name=op.f('fk_maintainership_claim_decided_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['member_project.id'], name=op.f('fk_maintainership_claim_project_id_member_project'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['repository_id'], ['repository.id'], name=op.f('fk_maintainership_claim_repository_id_repository'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_maintainership_claim_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintainership_claim'))
    )
    with op.batch_alter_table('maintainership_claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintainership_claim_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_maintainership_claim_user_id'), ['user_id'], unique=False)

    op.create_table('organisation_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_organisation_member_organisation_id_organisation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_organisation_member_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisation_member')),
    sa.UniqueConstraint('organisation_id', 'user_id', name='uq_organisation_member_org_user')
    )
    with op.batch_alter_table('organisation_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisation_member_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_organisation_member_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('member_project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('admitted_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('is_funder', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('is_implementor', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('email_key', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('email_token_version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.create_unique_constraint(batch_op.f('uq_user_account_email_key'), ['email_key'])


    # Existing accounts (admins made by the CLI) get their key; the
    # application computes it (NFKC, case-folded) for every new address.
    op.execute("UPDATE user_account SET email_key = lower(email) WHERE email IS NOT NULL")


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_user_account_email_key'), type_='unique')
        batch_op.drop_column('email_token_version')
        batch_op.drop_column('email_key')
        batch_op.drop_column('session_version')
        batch_op.drop_column('is_implementor')
        batch_op.drop_column('is_funder')
        batch_op.drop_column('email_verified_at')

    with op.batch_alter_table('member_project', schema=None) as batch_op:
        batch_op.drop_column('admitted_at')

    with op.batch_alter_table('organisation_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisation_member_user_id'))
        batch_op.drop_index(batch_op.f('ix_organisation_member_organisation_id'))

    op.drop_table('organisation_member')
    with op.batch_alter_table('maintainership_claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maintainership_claim_user_id'))
        batch_op.drop_index(batch_op.f('ix_maintainership_claim_project_id'))

    op.drop_table('maintainership_claim')
    op.drop_table('implementor_profile')
    with op.batch_alter_table('project_maintainer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_maintainer_user_id'))
        batch_op.drop_index(batch_op.f('ix_project_maintainer_project_id'))

    op.drop_table('project_maintainer')
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisation_owner_id'))

    op.drop_table('organisation')
    with op.batch_alter_table('oauth_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_state_user_id'))

    op.drop_table('oauth_state')
    with op.batch_alter_table('maintainer_invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maintainer_invitation_project_id'))

    op.drop_table('maintainer_invitation')
    with op.batch_alter_table('forge_identity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_forge_identity_user_id'))

    op.drop_table('forge_identity')
