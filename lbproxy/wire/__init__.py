"""
HTTP/1.1 syntax for the backend side (request heads, the response
parser).  Pure: bytes in, events out.
"""
