import pytest

from marketplace.forges.urls import InvalidRepositoryUrl, parse_repository_url


@pytest.mark.parametrize(
    "url, kind, host, owner, name",
    [
        ("https://github.com/medic/cht-core", "github", "github.com", "medic", "cht-core"),
        ("https://github.com/ushahidi/platform/", "github", "github.com", "ushahidi", "platform"),
        ("http://www.github.com/getodk/central.git", "github", "github.com", "getodk", "central"),
        ("https://github.com/opencrvs/opencrvs-core/tree/develop", "github", "github.com", "opencrvs", "opencrvs-core"),
        ("https://gitlab.com/our-sci/software/surveystack/", "gitlab", "gitlab.com", "our-sci/software", "surveystack"),
        ("https://gitlab.com/pcmt/pcmt/-/issues", "gitlab", "gitlab.com", "pcmt", "pcmt"),
        ("https://gitlab.inria.fr/stopcovid19/stopcovid-android", "gitlab", "gitlab.inria.fr", "stopcovid19", "stopcovid-android"),
    ],
)
def test_forge_repository_urls_parse_to_owner_and_name(url, kind, host, owner, name):
    parsed = parse_repository_url(url)
    assert (parsed.kind, parsed.host, parsed.owner, parsed.name) == (kind, host, owner, name)
    assert parsed.is_repository
    assert parsed.url == f"https://{host}/{owner}/{name}"


@pytest.mark.parametrize(
    "url, host, namespace",
    [
        ("https://github.com/team-asr", "github.com", "team-asr"),
        ("https://github.com/orgs/Sunbird-Lern/repositories", "github.com", "Sunbird-Lern"),
        ("https://gitlab.nibio.no/VIPS", "gitlab.nibio.no", "VIPS"),
    ],
)
def test_organisation_urls_are_namespaces_not_repositories(url, host, namespace):
    parsed = parse_repository_url(url)
    assert parsed.is_namespace and not parsed.is_repository
    assert (parsed.host, parsed.owner) == (host, namespace)


@pytest.mark.parametrize(
    "url",
    ["https://sourceforge.net/projects/omfs/", "https://hg.savannah.gnu.org/hgweb/health/", "https://github.com/"],
)
def test_other_hosts_are_links(url):
    parsed = parse_repository_url(url)
    assert parsed.kind == "other" and not parsed.is_repository


@pytest.mark.parametrize(
    "url",
    ["", "   ", "github.com/medic/cht-core", "ftp://github.com/a/b", "https://github.com/a b/c",
     "backend：https://github.com/xiaoyudi-China/yuudee", "https://github.com/a/<script>"],
)
def test_malformed_urls_are_refused(url):
    with pytest.raises(InvalidRepositoryUrl):
        parse_repository_url(url)
