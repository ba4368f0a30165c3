"""
The backend side: one request's exchange with a backend, the pool of
backend connections, and TLS to backends.
"""
