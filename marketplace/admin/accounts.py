"""Accounts (searchable; the admin role granted or withdrawn explicitly) and organisations."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from marketplace.access import admin_required, current_actor
from marketplace.accounts.models import Organisation, User
from marketplace.accounts.roles import grant_admin, withdraw_admin
from marketplace.admin.blueprint import bp, like, listing, paginate, search_text
from marketplace.admin.forms import AdminRoleForm
from marketplace.errors import on_refusal_go_to
from marketplace.extensions import db


@bp.get("/users")
@admin_required
def users():
    """Accounts, searchable by name or e-mail; each with the form that grants or withdraws the admin role."""
    q = search_text()
    stmt = select(User)
    if q:
        pattern = like(q.lower())
        stmt = stmt.where(func.lower(User.email).like(pattern, escape="\\")
                          | func.lower(User.display_name).like(pattern, escape="\\"))
    return render_template("admin/users.html", **listing(paginate(stmt, [User.id])), q=q)


@bp.post("/users/<id:user_id>/admin")
@admin_required
def set_admin_role(user_id: int):
    """Grant (``role=grant``) or withdraw (``role=withdraw``) the admin role; audited.

    Not one's own; never the last admin's (refused with a message, nothing changes).
    Sending the same form twice changes nothing the second time."""
    person = db.get_or_404(User, user_id)
    back = url_for("admin.users", q=request.args.get("q") or None)
    form = AdminRoleForm()
    if not form.validate_on_submit():
        flash(_("Choose whether to make this person an admin or to withdraw the role; nothing was changed."),
              "error")
        return redirect(back, code=303)
    me = current_actor()
    if person.id == me.id:
        flash(_("You cannot change your own admin role."), "error")
        return redirect(url_for("admin.users")), 303
    on_refusal_go_to(back)
    if form.role.data == "grant":
        changed = grant_admin(person, actor=f"user:{me.id}", actor_user_id=me.id)
        message = _("%(name)s is an admin.", name=person.display_name)
    else:
        changed = withdraw_admin(person, actor=f"user:{me.id}", actor_user_id=me.id)  # RoleError: flashed, 303
        message = _("%(name)s is no longer an admin.", name=person.display_name)
    db.session.commit()
    flash(message if changed else _("Nothing changed: %(name)s's role was already so.", name=person.display_name))
    return redirect(back, code=303)


@bp.get("/organisations")
@admin_required
def organisations():
    """Organisations, searchable by name."""
    q = search_text()
    stmt = select(Organisation)
    if q:
        stmt = stmt.where(func.lower(Organisation.name).like(like(q.lower()), escape="\\"))
    page = paginate(stmt, [func.lower(Organisation.name), Organisation.id])
    return render_template("admin/organisations.html", **listing(page), q=q)
