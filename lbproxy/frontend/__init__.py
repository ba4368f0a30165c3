"""
Client connections: the HTTP/1.1 channel and its hygiene, requests
and their streaming bodies, HTTP/2, write batching, request-target helpers
and local answers.
"""
