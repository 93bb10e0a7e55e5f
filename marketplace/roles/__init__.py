"""Issue 20: each role's home beyond its pages elsewhere — funders' e-mails
(receipts, refunds, what their money paid for), following an item without
pledging, implementors' "Items for me", firms paid as firms with remittance
advice, and the fiscal host's settings kept by an admin."""
