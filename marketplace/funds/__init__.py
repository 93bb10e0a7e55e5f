"""Project funds (issue 18): a member project's fund per currency, fed by
monthly subscriptions (Stripe Billing or a standing bank transfer), allotted by
its maintainers to items as bounties, returned to the fund when not paid out."""
