"""The training part of the item page (template ``training/_item_section.html``):
whether the item is a training item, the maintainers' switch, and the
signed-in trainee's progress in the project."""
from __future__ import annotations

from flask_login import current_user

from marketplace.backlog.models import BacklogItem
from marketplace.projects.service import may_manage
from marketplace.training import queries
from marketplace.training.forms import MarkForm

TEMPLATE = "training/_item_section.html"


def section(item: BacklogItem) -> dict:
    """``{"training", "form", "progress", "rule"}`` for ``item``: ``form`` only for its
    managers; ``progress`` (:func:`marketplace.training.queries.progress`) for a
    signed-in implementor, on a training item."""
    project_id = item.repository.project_id
    training = queries.is_training_item(item.id)
    progress = None
    if training and current_user.is_authenticated and current_user.is_implementor:
        progress = queries.progress(current_user.id, project_id)
    return {"training": training, "form": MarkForm() if may_manage(current_user, item.repository.project) else None,
            "progress": progress, "rule": queries.rule_for(project_id)}
