"""Signals the payouts send; other domains connect receivers at app setup
(:func:`marketplace.roles.service.connect_signals`)."""
from blinker import Namespace

_signals = Namespace()

# A merged change now solves an item (sync). Sender: the ``BacklogItem``,
# inside the sync's transaction. Followers are told (issue 20).
solved = _signals.signal("item-solved")

# A payout executed: its money left the item's escrow for the recipients and
# the covered pledges are released. Sender: the ``Payout``, inside the
# transaction, under its row lock, once per payout. Funders and followers are told.
executed = _signals.signal("payout-executed")
