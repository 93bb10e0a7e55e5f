"""The training part of the item page (template ``training/_item_section.html``):
whether the item is a training item, the maintainers' switch, and the
signed-in trainee's progress in the project."""
from __future__ import annotations

from flask_login import current_user
from sqlalchemy import exists

from marketplace.backlog.models import BacklogItem
from marketplace.projects.service import may_manage
from marketplace.training import queries
from marketplace.training.forms import MarkForm
from marketplace.training.models import TrainingItem

TEMPLATE = "training/_item_section.html"


def probes(item: BacklogItem) -> dict:
    """SQL conditions the item page asks in its one probe statement: whether
    the item is a training item (else the section reads nothing more)."""
    return {"training": exists().where(TrainingItem.item_id == item.id)}


def section(item: BacklogItem, *, probed: dict | None = None) -> dict:
    """``{"training", "form", "progress", "rule"}`` for ``item``: ``form`` only for its
    managers; ``progress`` (:func:`marketplace.training.queries.progress`) for a
    signed-in implementor, and ``rule`` (None otherwise), on a training item.
    ``probed``: the answers to :func:`probes` when the page asked them."""
    project_id = item.repository.project_id
    training = probed["training"] if probed is not None else queries.is_training_item(item.id)
    progress = None
    if training and current_user.is_authenticated and current_user.is_implementor:
        progress = queries.progress(current_user.id, project_id)
    return {"training": training, "form": MarkForm() if may_manage(current_user, item.repository.project) else None,
            "progress": progress, "rule": queries.rule_for(project_id) if training else None}
