"""Signals the claims domain sends; other domains connect receivers at app
setup (:func:`marketplace.payouts.service.connect_signals`)."""
from blinker import Namespace

_signals = Namespace()

# A certification was granted (after its notice was queued). Sender: the
# ``Certification``. The payouts release what waited for it.
certified = _signals.signal("certification-granted")

# Issue 19 (training): other domains' rules on claims. Senders and arguments:
# ``requesting`` (the item; ``user``), sent under the person's row lock before a
# claim is made, and ``approving`` (the claim; ``decider``), sent before it is
# approved: a receiver refuses by raising ``ClaimError``. ``requested`` (the new,
# flushed claim) and ``completed`` (the claim, just moved to completed) follow.
requesting = _signals.signal("claim-requesting")
requested = _signals.signal("claim-requested")
approving = _signals.signal("claim-approving")
completed = _signals.signal("claim-completed")
