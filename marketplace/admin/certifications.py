"""Global certifications (the commons' training): grant by e-mail, list, revoke."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from marketplace.access import admin_required, current_actor
from marketplace.admin.blueprint import bp, listing, paginate
from marketplace.admin.forms import ActionForm
from marketplace.claims import certification
from marketplace.claims.forms import CertificationForm, certification_form
from marketplace.claims.models import Certification
from marketplace.extensions import db


def _grant_globally(form: CertificationForm) -> tuple[Certification | None, str | None]:
    """Grant the global certification the (validated) form asks for: (the certification, None)
    or (None, a message for the admin)."""
    try:
        cert = certification.grant_by_email(form.email.data, issuer=current_actor(), project_id=None,
                                            valid_until=form.expires_on.data, note=form.note.data or "")
    except certification.CertificationError as exc:
        db.session.rollback()
        return None, exc.message
    return cert, None


@bp.route("/certifications", methods=["GET", "POST"])
@admin_required
def certifications():
    """Grant a global certification by e-mail (POST); every certification, valid ones first, newest first.
    A refused grant shows the page again with what was typed (400)."""
    form = certification_form()
    error = None
    if request.method == "POST":
        if form.validate_on_submit():
            cert, error = _grant_globally(form)
            if error is None:
                db.session.commit()
                flash(_("%(name)s is certified for every member project.", name=cert.user.display_name))
                return redirect(url_for("admin.certifications"), code=303)
        else:
            error = _("Please correct the marked fields.")
    page = paginate(
        select(Certification).options(selectinload(Certification.user), selectinload(Certification.project),
                                      selectinload(Certification.issued_by)),
        [Certification.revoked_at.is_not(None), Certification.issued_at.desc(), Certification.id.desc()])
    return render_template("admin/certifications.html", form=form, error=error, **listing(page),
                           q=""), 400 if request.method == "POST" else 200


@bp.post("/certifications/<id:certification_id>/revoke")
@admin_required
def revoke_certification(certification_id: int):
    """End a certification now (global or of a project)."""
    cert = db.get_or_404(Certification, certification_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    certification.revoke(cert, actor=current_actor())
    db.session.commit()
    flash(_("The certification of %(name)s is revoked.", name=cert.user.display_name))
    return redirect(url_for("admin.certifications"), code=303)
