"""Schemathesis against the served OpenAPI document (``/api/v1/openapi.json``),
in process through WSGI, with all its phases (examples, coverage, fuzzing,
stateful) and all its checks, on the seeded data plus pledges, refunds and
payouts (``api_data``).

Schemathesis' own pytest plugin (``schemathesis.pytest.from_fixture``) does
not run on pytest 9.2 (it writes ``Node._nodeid``), so this drives its engine
the way its CLI does and counts cases and failures with the CLI's statistic.
The seed, deterministic generation and the bounded number of examples keep
the run the same on every machine and under 90 s on two cores.
``make api-check`` runs this file alone."""
from __future__ import annotations

import os

import schemathesis
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic

SEED = 12
MAX_EXAMPLES = int(os.environ.get("API_CHECK_MAX_EXAMPLES", "25"))
# A schema-valid `project` that names no member project is a 400 naming the
# parameter (the document says so): the member slugs are data, not schema.
UNKNOWN_PROJECT_IS_400 = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]


def config(max_examples: int) -> schemathesis.Config:
    """Every phase and check on (their defaults), positive and negative data, fixed seed."""
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "generation": {"mode": "all", "max-examples": max_examples, "deterministic": True},
        "operations": [{
            "include-operation-id": "listItems",
            "checks": {"positive_data_acceptance": {"expected-statuses": UNKNOWN_PROJECT_IS_400}},
        }],
    })


def run_schemathesis(app, max_examples: int) -> tuple[Statistic, list]:
    """Run Schemathesis on the app's served document; returns the CLI's statistic
    (``total_cases``, ``total_failures``, ``failures`` by operation) and the
    errors it met (an exception raised in the app is one)."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config(max_examples))
    statistic, errors = Statistic(), []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            statistic.on_scenario_finished(event.recorder)
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            errors.append(event)
    return statistic, errors


def describe(statistic: Statistic, errors: list) -> str:
    lines = [f"{statistic.total_cases} generated cases, {statistic.total_failures} failures, {len(errors)} errors"]
    for label, groups in statistic.failures.items():
        for group in groups.values():
            for failure in group.failures:
                lines.append(f"{label}: {failure.title}: {failure.message} -- {group.code_sample}")
    lines += [f"error: {error.value!r}" for error in errors]
    return "\n".join(lines)


def test_the_api_answers_as_its_document_says(app, api_data):
    # As in production: an exception in a view is a 500 answer that the checks see.
    previous = app.config["PROPAGATE_EXCEPTIONS"]
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        statistic, errors = run_schemathesis(app, MAX_EXAMPLES)
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = previous
    print(describe(statistic, errors))
    assert statistic.total_cases > 300
    assert (statistic.total_failures, errors) == (0, []), describe(statistic, errors)
