# -*- test-case-name: tests.test_cache_rules -*-
"""
The shared HTTP cache (RFC 9111, with RFC 5861's stale extensions).

The rules are pure and live here, one module per job, from the bottom up:

  - C{directives}: C{Cache-Control} and HTTP dates;
  - C{freshness}: what may be stored, freshness lifetime, age, and what a
    request may be answered with;
  - C{key}: the cache key and C{Vary} variants;
  - C{store}: entries, the byte-bounded LRU, purge and collection;
  - C{coalesce}: one backend request per key, the others wait.

Above them: C{answer} (a request answered from an entry, a 304's update
of a stored head), C{shared} (the L{SharedCache} service: store, flights,
counters, the periodic collector on the injected clock), C{fetch} (a GET
of the cache's own on lbproxy's backend connections), C{revalidate}
(revalidations and background refreshes), and C{lbproxy.stages.cache}
(the stage in a route's chain).
"""
