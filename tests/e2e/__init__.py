"""
End-to-end tests: a real C{twistd -n lbproxy} process, real demo backends
and real clients (curl, sockets), all on 127.0.0.1.
"""
