"""
HTTPS listeners: certificates and contexts, SNI, ALPN, what a
request's TLS connection says, and the redirect from HTTP.
"""
