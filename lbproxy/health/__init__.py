"""
Target health: the state machine of one target (pure), and the
checker that probes targets and ejects failing ones.
"""
