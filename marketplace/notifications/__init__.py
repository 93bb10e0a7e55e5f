"""Notifications: composing and sending e-mail.

- :mod:`.links`: absolute links for e-mails (on ``PUBLIC_URL``);
- :mod:`.mail`: rendering one e-mail from its templates
  (``templates/email/<notice>/subject.txt`` and ``body.txt``, translatable
  like pages), queueing it after commit, handing it to SMTP;
- :mod:`.notices`: notices about claims, payouts and certifications, queued
  in the transaction that causes them and composed by a job after commit.

Services decide who is told and when; this package decides what they read.
"""
