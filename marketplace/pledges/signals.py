"""Signals the pledges send; other domains connect receivers at app setup
(:func:`marketplace.payouts.service.connect_signals`)."""
from blinker import Namespace

_signals = Namespace()

# A pledge's money was held on an item whose work is done already (pledged
# before, received after). Sender: the ``BacklogItem``. The payouts propose it.
held_after_work_done = _signals.signal("pledge-held-after-work-done")
