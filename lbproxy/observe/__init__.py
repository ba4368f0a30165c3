"""
What lbproxy tells its operator: the access log (later metrics).
"""
