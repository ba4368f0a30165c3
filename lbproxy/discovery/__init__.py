# -*- test-case-name: tests.test_etcd -*-
"""
Sources of change besides the configuration file: etcd (shared pools and
routes), a deployment agent's WebSocket feed of a pool's targets, and the
Redis connection that shared rate limits use.
"""
