"""
The running configuration: the L{lbproxy.runtime.snapshot.Runtime} snapshot that a reload
replaces whole, the chains built for it, the registry of per-target state
that outlives it, and routing.
"""
