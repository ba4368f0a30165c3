"""
Balancing: pools and their members, strategies (one module each,
chosen by name), and the wait queue of C{max_inflight}.  Pure.
"""
