"""Issue 20's "Items for me" matches the programming languages of the
implementor's profile against the repository's languages: the label names its
synced issues carry (the repository stores no language of its own)."""
from __future__ import annotations

from marketplace.accounts.models import ImplementorProfile
from marketplace.backlog.models import ItemLabel
from marketplace.backlog.service import upsert_issue
from marketplace.forges.types import ForgeIssue
from marketplace.roles import service as roles
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user
from tests.conftest import make_repository


def _issue(repo, number: int, title: str, labels: list[str]):
    return upsert_issue(repo, ForgeIssue(
        forge_id=910000 + number, number=number, title=title, body=None, state="open", state_reason=None,
        labels=labels, author_login=None, author_forge_id=None,
        html_url=f"https://github.com/{repo.owner}/{repo.name}/issues/{number}", comments_count=0, locked=False,
        created_at=utcnow(), updated_at=utcnow(), closed_at=None)).row


def _profile(session, user, *, skills=(), languages=()):
    profile = session.get(ImplementorProfile, user.id)
    if profile is None:
        profile = ImplementorProfile(user_id=user.id)
        session.add(profile)
    profile.skills, profile.languages = list(skills), list(languages)
    session.flush()


def test_items_for_me_keeps_the_items_of_repositories_in_the_implementors_languages(app, world, session):
    python_repo = world.repo  # Codertocat/Hello-World
    web_repo = make_repository("Codertocat", "web-client")
    # The funded items carry no language label themselves: their repositories' other issues do.
    _issue(python_repo, 881, "Packaging is broken", ["lang: Python", "bug"])
    _issue(web_repo, 882, "Dark mode", ["javascript"])
    in_python = _issue(python_repo, 883, "Export the register", [])
    in_web = _issue(web_repo, 884, "Export button", ["good first issue"])
    unlabelled_repo = make_repository("Codertocat", "docs")
    in_docs = _issue(unlabelled_repo, 885, "Write the guide", [])
    world.fund(in_python, 3000)
    world.fund(in_web, 5000)
    world.fund(in_docs, 1000)
    ama = world.implementor("ama@example.org", github_id=9881)

    _profile(session, ama, languages=["Python"])
    assert [i.id for i in roles.items_for(ama)["items"]] == [in_python.id]
    _profile(session, ama, languages=["Java"])  # "Java" is not "javascript"
    assert roles.items_for(ama)["items"] == []
    _profile(session, ama, languages=["JavaScript", "python"])
    assert [i.id for i in roles.items_for(ama)["items"]] == [in_web.id, in_python.id]  # most funded first
    # A skill named by an item's title keeps it too (either is enough).
    _profile(session, ama, skills=["guide"], languages=["python"])
    assert [i.id for i in roles.items_for(ama)["items"]] == [in_python.id, in_docs.id]
    # Neither given: every funded item.
    _profile(session, ama)
    assert [i.id for i in roles.items_for(ama)["items"]] == [in_web.id, in_python.id, in_docs.id]

    _profile(session, ama, languages=["Python"])
    session.commit()
    page = as_user(app, ama).get("/account/items-for-me").get_data(as_text=True)
    assert "Export the register" in page and "Export button" not in page and "Write the guide" not in page


def test_repository_languages_are_the_words_of_its_issue_labels_in_one_query(world, session):
    _issue(world.repo, 886, "Crash", ["language/C++", "Objective-C"])
    session.add(ItemLabel(item_id=_issue(world.repo, 887, "Slow", []).id, name="C#"))
    session.flush()
    assert roles.repository_languages({world.repo.id}) == {
        world.repo.id: {("language", "c++"), ("objective", "c"), ("c#",)}}
    assert roles.repository_languages(set()) == {}
    spoken = roles.repository_languages({world.repo.id})[world.repo.id]
    assert roles._speaks(spoken, [("objective", "c")]) and roles._speaks(spoken, [("c++",)])
    assert roles._speaks(spoken, [("c",)])  # "c" is a whole word of "objective-c"
    assert not roles._speaks(spoken, [("language", "c")])
