"""Mutation testing (``make mutation``): mutmut over one module at a time,
against that module's own tests only, so that one module takes minutes.

    python tests/mutation.py [MODULE ...]      # default: DEFAULT_MODULES

Each module runs in ``build/mutation/<module>/``: links to the sources and a
``pyproject.toml`` whose ``[tool.mutmut]`` names the module (``only_mutate``),
its tests (``pytest_add_cli_args_test_selection``) and, for a large module,
the functions whose mutants are run. The score printed at the end is
killed / all mutants (a timeout counts as killed: the mutant looped; a
mutant that none of the module's tests reach counts as not killed).
Tests that need a database use ``TEST_DATABASE_URL`` as ``make test`` does,
built once and reused by every mutant's session (``TEST_DATABASE_REUSE=1``,
see tests/conftest.py); one mutant runs at a time then.
Not part of ``make test`` or CI.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "mutation"
LINKED = ("marketplace", "jobs", "tests", "templates", "static", "migrations", "seed", "wsgi.py", "babel.cfg")


@dataclass(frozen=True)
class Target:
    """A module to mutate, the tests that are its own, and (for a large module)
    the functions whose mutants run; ``database``: its tests need PostgreSQL."""

    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()
    database: bool = False
    extra_pytest_args: tuple[str, ...] = field(default=())


TARGETS: dict[str, Target] = {
    # Money values, parsing, Stripe amounts and the fee rule.
    "marketplace/money.py": Target(("tests/test_money.py", "tests/test_split.py"), database=True),
    # The Markdown sanitiser.
    "marketplace/markdown.py": Target(("tests/test_markdown.py",)),
    # The largest-remainder split and the percentages maintainers type.
    "marketplace/payouts/split.py": Target(("tests/test_split.py",)),
    # Forge sync: which issue and pull-request events are stale.
    "marketplace/backlog/service.py": Target(
        ("tests/backlog/test_pull_request_upserts.py", "tests/webhooks/test_event_order.py"),
        functions=("upsert_pull_request", "upsert_issue"), database=True),
}
DEFAULT_MODULES = tuple(TARGETS)


def _mutmut_config(module: str, target: Target) -> str:
    def toml_list(values) -> str:
        return "[" + ", ".join(json.dumps(v) for v in values) + "]"

    return "\n".join([
        "[tool.mutmut]",
        'source_paths = ["marketplace", "jobs"]',
        f"only_mutate = {toml_list([module])}",
        'also_copy = ["templates", "static", "migrations", "seed", "wsgi.py", "babel.cfg"]',
        f"pytest_add_cli_args_test_selection = {toml_list(target.tests)}",
        "pytest_add_cli_args = " + toml_list(["-p", "no:cacheprovider", "-q", "--hypothesis-profile=mutation",
                                               *target.extra_pytest_args]),
        "use_git_change_detection = false",
        # A test session on the database starts slower (seconds): not a mutant that loops.
        f"timeout_constant = {30.0 if target.database else 5.0}",
        "",
    ])


def _mutant_globs(module: str, target: Target) -> list[str]:
    dotted = module.removesuffix(".py").replace("/", ".")
    return [f"{dotted}.x_{name}__mutmut_*" for name in target.functions]


def run(module: str) -> tuple[dict, list[str]]:
    """Mutate ``module`` and run its tests against each mutant: (mutmut's counts
    by outcome, one ``name: outcome`` line per mutant not killed)."""
    target = TARGETS.get(module)
    if target is None:
        raise SystemExit(f"no mutation target {module!r}; known: {', '.join(TARGETS)}")
    work = BUILD / module.replace("/", "__")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    (work / "pyproject.toml").write_text(_mutmut_config(module, target))
    mutmut = [sys.executable, "-m", "mutmut"]
    children = ["--max-children", "1"] if target.database else []
    # One test session per mutant: the database built by the first is used by the next (tests/conftest.py).
    env = {**os.environ, "TEST_DATABASE_REUSE": "1"} if target.database else None
    subprocess.run([*mutmut, "run", *children, *_mutant_globs(module, target)], cwd=work, check=True, env=env)
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=work, check=True, stdout=subprocess.DEVNULL)
    stats = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
    results = subprocess.run([*mutmut, "results"], cwd=work, check=True, capture_output=True, text=True).stdout
    not_survivors = (": killed", ": timeout", ": not checked")
    survivors = [line.strip() for line in results.splitlines() if not line.strip().endswith(not_survivors)]
    return stats, survivors


def main(argv: list[str]) -> int:
    modules = [m for arg in argv for m in arg.split()] or list(DEFAULT_MODULES)
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    scores = [(module, *run(module)) for module in modules]
    print()
    for module, stats, survivors in scores:
        killed = stats["killed"] + stats["timeout"]
        outcomes = ("killed", "timeout", "survived", "no_tests", "suspicious", "segfault", "skipped")
        total = sum(stats[key] for key in outcomes)  # without those not run (another function's)
        print(f"{module}: {killed}/{total} mutants killed ({killed / total:.0%}): {stats['survived']} survived, "
              f"{stats['no_tests']} reached by none of its tests, {stats['timeout']} timed out (counted killed)"
              + (f"; {stats['total'] - total} of other functions not run" if stats["total"] > total else ""))
        for line in survivors:
            print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
