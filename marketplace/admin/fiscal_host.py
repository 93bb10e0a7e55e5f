"""The fiscal host's settings (legal name, contact, receipts address, bank
instructions per currency): kept by an admin, overriding the environment, audited."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from marketplace.access import admin_required, current_actor
from marketplace.admin.blueprint import bp
from marketplace.extensions import db
from marketplace.fiscal_host import fiscal_host, forget
from marketplace.roles import service as roles
from marketplace.roles.forms import INSTRUCTION_CURRENCIES, fiscal_host_form


@bp.route("/fiscal-host", methods=["GET", "POST"])
@admin_required
def fiscal_host_settings():
    """Show and save the fiscal host's settings; an empty field keeps the environment's value."""
    row = roles.fiscal_host_setting()
    saved = (row.bank_instructions or {}) if row else {}
    form = fiscal_host_form(legal_name=row.legal_name if row else "", email=row.email if row else "",
                            address=row.address if row else "",
                            **{f"bank_{code}": saved.get(code, "") for code in INSTRUCTION_CURRENCIES})
    if form.validate_on_submit():
        roles.save_fiscal_host(legal_name=form.legal_name.data or "", email=form.email.data or "",
                               address=form.address.data or "",
                               bank_instructions={code: form[f"bank_{code}"].data or ""
                                                  for code in INSTRUCTION_CURRENCIES}, admin=current_actor())
        db.session.commit()
        forget()
        flash(_("The fiscal host's settings are saved."))
        return redirect(url_for("admin.fiscal_host_settings"), code=303)
    return render_template("admin/fiscal_host.html", form=form, current=fiscal_host(),
                           currencies=INSTRUCTION_CURRENCIES), 400 if request.method == "POST" else 200
