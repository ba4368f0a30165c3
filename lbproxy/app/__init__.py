"""
The program: C{twistd lbproxy} options and service, the one wiring of
the request-serving parts, signals, worker processes, GC tuning.
The top of the house: it may import everything below it.
"""
