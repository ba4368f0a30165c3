"""
The request pipeline: the dispatcher, stages and chains, the
per-request context, and the one ordered list of stages.
"""
