"""
Pure edge policies: access rules and passwords, rate limits, CORS,
header rules, the client behind trusted proxies, hop-by-hop headers.
"""
