"""Reading a Stripe Connect Account object (a dict from ``GET /v1/accounts/{id}``
or an ``account.updated`` event's ``data.object``). Pure functions, no I/O.

Stripe docs: "Account capabilities", "Handle verification updates" (the
``requirements`` hash).
"""
from __future__ import annotations


def can_receive_transfers(account: dict) -> bool:
    """True when Stripe will accept a transfer to this account.

    The ``transfers`` capability decides: Stripe refuses a transfer with
    ``insufficient_capabilities_for_transfer`` unless it is ``"active"``. It is
    a string in the Account object of every API version that has capabilities
    (the recorded 2020-08-27 events and today's); a Capability object
    (``{"status": …}``) is read too. ``payouts_enabled`` is about paying out to
    the person's bank, not about receiving transfers (an account can hold
    transfers while its payouts wait for a bank account), so it is used only
    for an account that predates capabilities (no ``capabilities`` key at all).
    An account with capabilities but no ``transfers`` entry (the recorded
    Standard account: ``{}``) cannot receive transfers.
    """
    capabilities = account.get("capabilities")
    if capabilities is None:
        return bool(account.get("payouts_enabled"))
    transfers = capabilities.get("transfers")
    if isinstance(transfers, dict):
        transfers = transfers.get("status")
    return transfers == "active"


def missing_requirements(account: dict) -> list[str]:
    """What Stripe says the person must still provide, most urgent first.

    Stripe's requirement names (``"external_account"``,
    ``"tos_acceptance.date"``…): ``requirements.past_due`` then the rest of
    ``requirements.currently_due``, each once. When the account is disabled,
    the last entry is ``"disabled_reason:<reason>"`` (e.g.
    ``"disabled_reason:requirements.past_due"``, ``"disabled_reason:rejected.fraud"``),
    because some reasons name no field to fill in. ``eventually_due`` is left
    out: nothing is blocked by it yet. Empty when nothing is missing.
    """
    requirements = account.get("requirements") or {}
    missing: list[str] = []
    for name in [*(requirements.get("past_due") or []), *(requirements.get("currently_due") or [])]:
        if name not in missing:
            missing.append(name)
    if requirements.get("disabled_reason"):
        missing.append(f"disabled_reason:{requirements['disabled_reason']}")
    return missing
