"""The commons on the forge (issue 22): bounty badges, one living comment and a
``bounty`` label per funded issue (opt-in per repository), and ``/claim`` /
``/unclaim`` commands typed in issue comments."""
