"""Payouts: money owed to contributors for completed items, and the rails that pay it."""
