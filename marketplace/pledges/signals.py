"""Signals the pledges send; other domains connect receivers at app setup
(:func:`marketplace.payouts.service.connect_signals`)."""
from blinker import Namespace

_signals = Namespace()

# A pledge's money was held on an item whose work is done already (pledged
# before, received after). Sender: the ``BacklogItem``. The payouts propose it.
held_after_work_done = _signals.signal("pledge-held-after-work-done")

# A pledge's money was received and is held in its item's escrow now (card
# paid, or the fiscal host confirmed the transfer). Sender: the ``Pledge``,
# inside the transaction that held it, under its row lock. The matching pools
# match it.
held = _signals.signal("pledge-held")

# Money of a pledge left its item's escrow (a refund, a dispute lost) or the
# pledge moved to another item. Sender: the ``Pledge``, inside the
# transaction, under its row lock. The matching pools give back their match's
# share.
money_left = _signals.signal("pledge-money-left")
