"""
The ends of chains: routing, not found, forwarding to a pool.
"""
