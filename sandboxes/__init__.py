"""Local sandbox servers that stand in for payout providers at the network edge.

Test and demo tools only: settlement's domain code never imports this package.
"""
