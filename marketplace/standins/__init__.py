"""Local stand-ins for the outside services, for development and the demo only.

``make run`` starts them when no real service is configured: a local Stripe
(:mod:`marketplace.standins.stripe`), a local forge answering GitHub's OAuth
flow and sending signed webhook deliveries (:mod:`marketplace.standins.forge`),
and a mail outbox shown at ``/dev/mail``. They are never shipped (the wheel
excludes this package) and never start in production: :func:`refusals` names
what forbids them, and the app factory refuses to start with them then.
"""
