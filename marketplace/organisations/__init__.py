"""Organisations: funder organisations and implementor firms, their owner and members."""
