"""Signals the claims domain sends; other domains connect receivers at app
setup (:func:`marketplace.payouts.service.connect_signals`)."""
from blinker import Namespace

_signals = Namespace()

# A certification was granted (after its notice was queued). Sender: the
# ``Certification``. The payouts release what waited for it.
certified = _signals.signal("certification-granted")
