"""
One module per stage of the request pipeline (see
L{lbproxy.pipeline.order} for the order).
"""
