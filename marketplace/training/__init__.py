"""Training path to certification (issue 19): training items, project mentors,
mentored training claims and the automatic project certification they earn.

The rule for automatic certification lives in :mod:`marketplace.training.service`
(:func:`marketplace.training.service.certify_if_earned`).
"""
