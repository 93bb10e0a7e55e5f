"""linking rules (marketplace/backlog/links.py) against GitHub's and GitLab's rules."""
import pytest

from marketplace.backlog.links import find_references


def closing(text, forge="github"):
    return sorted((r.path, r.number) for r in find_references(text, forge) if r.closing)


def refs(text, forge="github"):
    return sorted((r.host, r.path, r.number) for r in find_references(text, forge))


def test_github_keyword_inside_inline_code_does_not_close():
    # GitHub ignores closing keywords in inline code, code fences and block quotes.
    assert closing("Use `Fixes #12` in your PR body") == []


def test_github_keyword_inside_a_code_fence_does_not_close():
    assert closing("Example:\n```\nFixes #12\n```\n") == []


def test_github_keyword_in_a_block_quote_does_not_close():
    assert closing("> Fixes #12\n\nquoting the other PR") == []


def test_gitlab_space_separated_list_closes_every_issue():
    # GitLab's default pattern joins references with (?: *,? +and +| *,? *): "Closes #1 #2" closes both.
    assert closing("Closes #1 #2", "gitlab") == [(None, 1), (None, 2)]


def test_gitlab_keyword_is_case_sensitive_after_the_first_letter():
    # [Cc]los(?:e[sd]?|ing): "CLOSES" is not a GitLab closing keyword.
    assert closing("CLOSES #1", "gitlab") == []


def test_a_url_without_an_issues_path_is_no_reference():
    # "https://github.com/o/r#12" yields a reference to the repository "com/o/r".
    assert refs("see https://github.com/o/r#12") == []


@pytest.mark.parametrize("kw", ["close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves",
                                "resolved", "CLOSES", "Fixes:"])
def test_github_keywords(kw):
    assert closing(f"{kw} #7") == [(None, 7)]


@pytest.mark.parametrize("text", ["prefix#12", "#12abc", "closing #12", "fixing #12", "prefixes #12",
                                  "Fixes issue #12", "fixes the bug #12", "Fixes\n#12",
                                  "Fixes https://github.com/o/r/pull/12", "Fixes #12abc"])
def test_github_non_closing(text):
    assert closing(text) == []


def test_github_forms():
    assert closing("Fixes o/r#5") == [("o/r", 5)]
    assert closing("Fixes https://github.com/o/r/issues/5") == [("o/r", 5)]
    assert closing("Fixes #1, #2") == [(None, 1)]
    assert refs("prefix#12 and #12abc") == []
