"""Issue 20: a label on an item links to the backlog filtered to that project and label."""
from __future__ import annotations

import html
import re

from marketplace.backlog.models import BacklogItem


def test_labels_on_the_backlog_and_the_item_page_link_to_the_filtered_backlog(client, session):
    page = client.get("/?label=bug").get_data(as_text=True)
    links = {html.unescape(href) for href in re.findall(r'<li><a href="(/\?project=[^"]+&amp;label=bug)">', page)}
    assert links, "no label link on the backlog"
    href = sorted(links)[0]
    filtered = client.get(href)
    assert filtered.status_code == 200
    shown = re.findall(r'href="/items/(\d+)"', filtered.get_data(as_text=True))
    assert shown
    project = href.split("project=")[1].split("&")[0]
    for item_id in set(shown):
        item = session.get(BacklogItem, int(item_id))
        assert "bug" in [label.name for label in item.labels] and item.repository.project.slug == project
    item = session.get(BacklogItem, int(shown[0]))
    item_page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert f'href="/?project={project}&amp;label=bug"' in item_page
