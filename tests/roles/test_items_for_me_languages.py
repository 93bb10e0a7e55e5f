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
        world.repo.id: {("c++",), ("objective", "c"), ("c#",)}}
    assert roles.repository_languages(set()) == {}
    spoken = roles.repository_languages({world.repo.id})[world.repo.id]
    assert roles._speaks(spoken, [("objective", "c")]) and roles._speaks(spoken, [("c++",)])
    assert not roles._speaks(spoken, [("c",)])  # Objective-C is not C, though "c" is one of its words
    assert not roles._speaks(spoken, [("language", "c")])


def test_a_language_is_a_whole_label_or_what_follows_lang_so_c_is_not_objective_c_nor_c_api(world, session):
    repos = {name: make_repository("Codertocat", name) for name in
             ("objc", "cext", "cpp", "cs", "c", "java", "js", "hostile")}
    _issue(repos["objc"], 891, "Crash", ["Objective-C"])
    _issue(repos["cext"], 892, "Crash", ["topic-C-API", "good first issue"])
    _issue(repos["cpp"], 893, "Crash", ["language/C++"])
    _issue(repos["cs"], 894, "Crash", ["C#"])
    _issue(repos["c"], 895, "Crash", ["Lang: C"])
    _issue(repos["java"], 896, "Crash", ["JAVA"])
    _issue(repos["js"], 897, "Crash", ["lang-javascript", "java-script-bridge"])
    _issue(repos["hostile"], 898, "Crash", ["' OR 1=1 --", "c" * 40 + " " + "+" * 60, "lang: <script>"])
    funded = {}
    for number, (name, repo) in enumerate(repos.items(), start=901):
        funded[name] = _issue(repo, number, f"Work in {name}", [])
        world.fund(funded[name], 10000 - number)  # most funded in the order above
    ama = world.implementor("ama@example.org", github_id=9891)

    def kept(*languages):
        _profile(session, ama, languages=languages)
        return [name for name, item in funded.items() if item in roles.items_for(ama)["items"]]

    assert kept("C") == ["c"]
    assert kept("c++") == ["cpp"]
    assert kept("C#") == ["cs"]
    assert kept("Objective-C") == ["objc"]
    assert kept("Java") == ["java"]
    assert kept("JavaScript") == ["js"]
    assert kept("java script", "bridge", "api", "topic", "lang", "first issue") == []
    assert kept("<script>") == ["hostile"]  # its words: "script"; what follows "lang:"
    assert roles.repository_languages({repos["cext"].id, repos["js"].id}) == {
        repos["cext"].id: {("topic", "c", "api"), ("good", "first", "issue")},
        repos["js"].id: {("javascript",), ("java", "script", "bridge")}}


def _statements(session, call):
    from sqlalchemy import event

    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):  # the test's own transaction
            seen.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        result = call()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return result, seen


def test_items_for_me_reads_a_fixed_number_of_statements_however_many_items_and_labels(app, world, session):
    repo = make_repository("Codertocat", "many-labels")
    for number in range(930, 960):
        item = _issue(repo, number, f"Task {number}", [f"area {n}" for n in range(number % 7 * 10)] + ["lang: Go"])
        world.fund(item, 100 + number)
    ama = world.implementor("ama@example.org", github_id=9930)
    _profile(session, ama, skills=["nothing-matches"], languages=["Go"])
    session.commit()
    session.expire_all()
    assert ama.id  # read back before counting
    found, seen = _statements(session, lambda: roles.items_for(ama))
    assert len(found["items"]) == 30
    # The profile, the certifications, the items (with repository and project), their labels,
    # their funding and the repositories' labels.
    assert len(seen) == 6
    client = as_user(app, ama)
    session.expire_all()
    few, seen_few = _statements(session, lambda: client.get("/account/items-for-me"))
    assert few.status_code == 200 and few.get_data(as_text=True).count("Task 9") == 30
    for number in range(960, 990):
        world.fund(_issue(repo, number, f"Task {number}", ["lang: Go"]), 100 + number)
    session.commit()
    session.expire_all()
    more, seen_more = _statements(session, lambda: client.get("/account/items-for-me"))
    assert more.get_data(as_text=True).count("Task 9") == 60
    assert [q[:60] for q in seen_more] == [q[:60] for q in seen_few]  # no statement per item
