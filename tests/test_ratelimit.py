"""
Tests for L{lbproxy.policy.ratelimit}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.policy.ratelimit import RateLimiter, retry_after


class RateLimiterTests(SynchronousTestCase):
    """
    Tests for L{RateLimiter}.  Rates are powers of two where exact
    values are asserted, so the floats are exact.
    """

    def test_burstThenRefused(self) -> None:
        """
        A new client may make C{burst} requests at once; the next one is
        refused with the time until a token comes back.
        """
        limiter = RateLimiter(rate=2.0, burst=3)
        self.assertEqual([limiter.check("a", 0.0) for _ in range(3)], [0.0] * 3)
        self.assertEqual(limiter.check("a", 0.0), 0.5)

    def test_retryAfterShrinks(self) -> None:
        """
        The delay returned counts down as time passes, and a request is
        allowed exactly when it reaches zero.
        """
        limiter = RateLimiter(rate=2.0, burst=1)
        self.assertEqual(limiter.check("a", 10.0), 0.0)
        self.assertEqual(limiter.check("a", 10.0), 0.5)
        self.assertEqual(limiter.check("a", 10.125), 0.375)
        self.assertEqual(limiter.check("a", 10.25), 0.25)
        self.assertEqual(limiter.check("a", 10.5), 0.0)
        self.assertEqual(limiter.check("a", 10.5), 0.5)

    def test_refillOneTokenPerInterval(self) -> None:
        """
        After the burst, one request per C{1 / rate} seconds gets through.
        """
        limiter = RateLimiter(rate=4.0, burst=2)
        limiter.check("a", 0.0)
        limiter.check("a", 0.0)
        self.assertEqual(limiter.check("a", 0.0), 0.25)
        self.assertEqual(limiter.check("a", 0.25), 0.0)
        self.assertEqual(limiter.check("a", 0.25), 0.25)
        self.assertEqual(limiter.check("a", 0.5), 0.0)

    def test_partialRefill(self) -> None:
        """
        Tokens come back one by one: after two intervals, two requests.
        """
        limiter = RateLimiter(rate=1.0, burst=4)
        for _ in range(4):
            self.assertEqual(limiter.check("a", 0.0), 0.0)
        self.assertEqual(limiter.check("a", 2.0), 0.0)
        self.assertEqual(limiter.check("a", 2.0), 0.0)
        self.assertEqual(limiter.check("a", 2.0), 1.0)

    def test_refillCappedAtBurst(self) -> None:
        """
        However long a client is quiet, it gets at most C{burst} requests
        at once.
        """
        limiter = RateLimiter(rate=1.0, burst=2)
        limiter.check("a", 0.0)
        results = [limiter.check("a", 1000.0) for _ in range(3)]
        self.assertEqual(results, [0.0, 0.0, 1.0])

    def test_refusedRequestsTakeNothing(self) -> None:
        """
        Refused requests do not push the next allowed one further away.
        """
        limiter = RateLimiter(rate=1.0, burst=1)
        limiter.check("a", 0.0)
        for _ in range(100):
            self.assertEqual(limiter.check("a", 0.5), 0.5)
        self.assertEqual(limiter.check("a", 1.0), 0.0)

    def test_slowRate(self) -> None:
        """
        Rates below one per second give delays longer than a second.
        """
        limiter = RateLimiter(rate=0.25, burst=1)
        limiter.check("a", 0.0)
        self.assertEqual(limiter.check("a", 1.0), 3.0)
        self.assertEqual(retry_after(limiter.check("a", 1.5)), 3)

    def test_inexactRateOnTime(self) -> None:
        """
        A client that comes exactly every C{1 / rate} seconds is always
        allowed, even when C{1 / rate} is not exact in binary.
        """
        limiter = RateLimiter(rate=10.0, burst=1)
        for k in range(2000):
            self.assertEqual(limiter.check("a", k / 10), 0.0, k)

    def test_inexactRateDelay(self) -> None:
        """
        With an inexact rate, the delay is right to within rounding.
        """
        limiter = RateLimiter(rate=10.0, burst=2)
        limiter.check("a", 0.0)
        limiter.check("a", 0.0)
        self.assertAlmostEqual(limiter.check("a", 0.0), 0.1)
        self.assertAlmostEqual(limiter.check("a", 0.03), 0.07)

    def test_keysIndependent(self) -> None:
        """
        Each key has its own bucket.
        """
        limiter = RateLimiter(rate=1.0, burst=1)
        self.assertEqual(limiter.check("a", 0.0), 0.0)
        self.assertEqual(limiter.check("a", 0.0), 1.0)
        self.assertEqual(limiter.check("b", 0.0), 0.0)
        self.assertEqual(limiter.check("b", 0.0), 1.0)

    def test_clockBackwards(self) -> None:
        """
        Time going backwards refills nothing.
        """
        limiter = RateLimiter(rate=1.0, burst=1)
        limiter.check("a", 100.0)
        self.assertEqual(limiter.check("a", 50.0), 51.0)
        self.assertEqual(limiter.check("a", 101.0), 0.0)

    def test_boundedLeastRecentlyUsed(self) -> None:
        """
        At most C{maxKeys} buckets are kept; the least recently used one
        goes, even when it is not full, and that client starts over with
        a full bucket.
        """
        limiter = RateLimiter(rate=1.0, burst=1, maxKeys=3)
        for key in "abc":
            limiter.check(key, 0.0)
        self.assertEqual(len(limiter), 3)
        limiter.check("d", 0.0)
        self.assertEqual(len(limiter), 3)
        self.assertNotIn("a", limiter)
        self.assertEqual(limiter.check("a", 0.0), 0.0)
        self.assertNotIn("b", limiter)
        self.assertEqual(len(limiter), 3)

    def test_useRefreshesRecency(self) -> None:
        """
        Any check, allowed or refused, makes a key the most recently used.
        """
        limiter = RateLimiter(rate=1.0, burst=1, maxKeys=3)
        for key in "abc":
            limiter.check(key, 0.0)
        self.assertEqual(limiter.check("a", 0.5), 0.5)
        limiter.check("d", 0.5)
        self.assertIn("a", limiter)
        self.assertNotIn("b", limiter)
        self.assertEqual(limiter.check("a", 0.5), 0.5)

    def test_fullBucketsForgotten(self) -> None:
        """
        A bucket that is full again is dropped once it is the least
        recently used: an idle client costs no memory for long.
        """
        limiter = RateLimiter(rate=1.0, burst=2)
        limiter.check("a", 0.0)
        limiter.check("b", 0.5)
        self.assertEqual(len(limiter), 2)
        limiter.check("c", 10.0)
        self.assertNotIn("a", limiter)
        limiter.check("c", 10.0)
        self.assertNotIn("b", limiter)
        self.assertEqual(len(limiter), 1)

    def test_emptyBucketKept(self) -> None:
        """
        A bucket that is not full is not dropped while there is room.
        """
        limiter = RateLimiter(rate=1.0, burst=1)
        limiter.check("a", 0.0)
        limiter.check("b", 0.5)
        self.assertIn("a", limiter)
        self.assertEqual(limiter.check("a", 0.5), 0.5)

    def test_manyClientsBounded(self) -> None:
        """
        However many clients come, memory stays within C{maxKeys}.
        """
        limiter = RateLimiter(rate=1.0, burst=5, maxKeys=100)
        for index in range(10_000):
            limiter.check(f"10.0.{index // 256}.{index % 256}", 0.0)
        self.assertEqual(len(limiter), 100)

    def test_invalidArguments(self) -> None:
        """
        C{rate} must be positive and finite, C{burst} and C{maxKeys} at
        least 1.
        """
        for rate, burst, maxKeys in [
            (0.0, 1, 1),
            (-1.0, 1, 1),
            (float("inf"), 1, 1),
            (float("nan"), 1, 1),
            (1.0, 0, 1),
            (1.0, 1, 0),
        ]:
            self.assertRaises(ValueError, RateLimiter, rate, burst, maxKeys)


class RetryAfterTests(SynchronousTestCase):
    """
    Tests for L{retry_after}.
    """

    def test_roundedUp(self) -> None:
        """
        Delays are rounded up to whole seconds, at least one.
        """
        self.assertEqual(retry_after(1e-12), 1)
        self.assertEqual(retry_after(0.1), 1)
        self.assertEqual(retry_after(1.0), 1)
        self.assertEqual(retry_after(1.000001), 2)
        self.assertEqual(retry_after(59.5), 60)
