"""The tests use the product's local Stripe stand-in (marketplace/payments/local_stripe.py)."""
from marketplace.standins.stripe import LocalStripe


class FakeStripe(LocalStripe):
    def _create_session(self, form: dict, key: str | None) -> dict:
        return self.create_session(form, key)


def _refunds(fake: FakeStripe, form: dict, key: str | None) -> dict:
    return fake.create_refund(form, key)
