"""Local sandbox servers that stand in for payout providers at the network edge: PayPal
(`sandboxes.paypal`), Amazon's Incentives API (`sandboxes.amazon`), the points partners'
and the bank's file answers (`sandboxes.partners`).

Test and demo tools only, installed with the `sandbox` extra (`pip install
'cashback-settlement[sandbox]'`); settlement's domain code never imports this package. A
sandbox server listens on loopback unless started with `allow_public` (`sandboxes.bind`).
"""
