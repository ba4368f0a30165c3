"""
Tests for the health-checking part of L{lbproxy.config}: C{[health]} and
C{[pools.NAME.health]}.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import Config, ConfigError, HealthConfig, Target, parse_config

KNOWN = (
    "known: ejection_time, expect_status, fall, host, interval, "
    "max_ejection_time, passive_fail, path, rise, slow_start, timeout"
)


def document(
    health: Optional[Any] = None, pool: Optional[Any] = None, **extra: Any
) -> Dict[str, Any]:
    """
    A configuration with pools C{x} and C{y}; C{health} is the C{[health]}
    table, C{pool} pool C{x}'s C{health} table.
    """
    data: Dict[str, Any] = {
        "pools": {"x": {"targets": ["a:1"]}, "y": {"targets": ["b:1"]}},
    }
    if health is not None:
        data["health"] = health
    if pool is not None:
        data["pools"]["x"]["health"] = pool
    data.update(extra)
    return data


def parse(health: Optional[Any] = None, pool: Optional[Any] = None) -> Config:
    return parse_config(document(health, pool), "test.toml")


class DefaultsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        config = parse()
        expected = HealthConfig(
            interval=5.0,
            timeout=2.0,
            rise=2,
            fall=3,
            path=None,
            expect_status=((200, 399),),
            host=None,
            passive_fail=3,
            ejection_time=10.0,
            max_ejection_time=300.0,
            slow_start=0.0,
        )
        self.assertEqual(HealthConfig(), expected)
        self.assertEqual(config.health, expected)
        self.assertEqual(config.pools["x"].health, expected)
        self.assertEqual(config.pools["y"].health, expected)

    def test_emptyTables(self) -> None:
        config = parse({}, {})
        self.assertEqual(config.health, HealthConfig())
        self.assertEqual(config.pools["x"].health, HealthConfig())


class GlobalTests(SynchronousTestCase):
    """
    C{[health]} sets every pool's health checking.
    """

    def test_allKeys(self) -> None:
        config = parse(
            {
                "interval": 10,
                "timeout": 1.5,
                "rise": 4,
                "fall": 5,
                "path": "/healthz",
                "expect_status": [200, 204],
                "host": "mango.internal",
                "passive_fail": 2,
                "ejection_time": 5,
                "max_ejection_time": 60.5,
                "slow_start": 30,
            }
        )
        expected = HealthConfig(
            interval=10.0,
            timeout=1.5,
            rise=4,
            fall=5,
            path="/healthz",
            expect_status=((200, 200), (204, 204)),
            host="mango.internal",
            passive_fail=2,
            ejection_time=5.0,
            max_ejection_time=60.5,
            slow_start=30.0,
        )
        self.assertEqual(config.health, expected)
        self.assertEqual(config.pools["x"].health, expected)
        self.assertEqual(config.pools["y"].health, expected)

    def test_numbersAreFloats(self) -> None:
        health = parse({"interval": 10, "timeout": 2, "ejection_time": 3}).health
        self.assertIsInstance(health.interval, float)
        self.assertIsInstance(health.timeout, float)
        self.assertIsInstance(health.ejection_time, float)

    def test_someKeys(self) -> None:
        health = parse({"rise": 1, "path": "/ping"}).health
        self.assertEqual(health, HealthConfig(rise=1, path="/ping"))


class PoolOverrideTests(SynchronousTestCase):
    """
    C{[pools.NAME.health]} is laid over C{[health]}, key by key.
    """

    def test_onlyPath(self) -> None:
        config = parse(
            {"interval": 8, "timeout": 3, "rise": 3, "fall": 4, "expect_status": 204},
            {"path": "/healthz"},
        )
        self.assertEqual(
            config.pools["x"].health,
            HealthConfig(
                interval=8.0,
                timeout=3.0,
                rise=3,
                fall=4,
                path="/healthz",
                expect_status=((204, 204),),
            ),
        )
        # The other pool and the global settings are unchanged.
        self.assertIsNone(config.pools["y"].health.path)
        self.assertEqual(config.pools["y"].health, config.health)
        self.assertIsNone(config.health.path)

    def test_overrideGlobal(self) -> None:
        config = parse(
            {"path": "/global", "interval": 8, "host": "g.internal"},
            {"path": "/local", "interval": 4, "expect_status": [200]},
        )
        health = config.pools["x"].health
        self.assertEqual(
            (health.path, health.interval, health.host, health.expect_status),
            ("/local", 4.0, "g.internal", ((200, 200),)),
        )
        self.assertEqual(config.pools["y"].health.path, "/global")

    def test_overDefaults(self) -> None:
        config = parse(None, {"fall": 1, "passive_fail": 5})
        self.assertEqual(config.pools["x"].health, HealthConfig(fall=1, passive_fail=5))
        self.assertEqual(config.pools["y"].health, HealthConfig())

    def test_globalAfterPoolInDocument(self) -> None:
        """
        The order of the tables in the document does not matter.
        """
        data = {"pools": {"x": {"targets": ["a:1"], "health": {"path": "/h"}}}}
        data["health"] = {"rise": 7}
        health = parse_config(data).pools["x"].health
        self.assertEqual((health.path, health.rise), ("/h", 7))


class SlowStartTests(SynchronousTestCase):
    def test_values(self) -> None:
        for value in (0, 2.5, 30, 3600):
            self.assertEqual(parse(None, {"slow_start": value}).pools["x"].health.slow_start, value)

    def test_float(self) -> None:
        self.assertIsInstance(parse({"slow_start": 30}).health.slow_start, float)

    def test_poolOverridesGlobal(self) -> None:
        config = parse({"slow_start": 30}, {"slow_start": 0})
        self.assertEqual(config.pools["x"].health.slow_start, 0.0)
        self.assertEqual(config.pools["y"].health.slow_start, 30.0)


class ExpectStatusTests(SynchronousTestCase):
    def ranges(self, value: Any) -> Any:
        return parse({"expect_status": value}).health.expect_status

    def test_intList(self) -> None:
        self.assertEqual(self.ranges([200, 204, 301]), ((200, 200), (204, 204), (301, 301)))

    def test_rangeString(self) -> None:
        self.assertEqual(self.ranges("200-399"), ((200, 399),))

    def test_rangeStringSpaces(self) -> None:
        self.assertEqual(self.ranges(" 200 - 299 "), ((200, 299),))

    def test_singleRange(self) -> None:
        self.assertEqual(self.ranges("204-204"), ((204, 204),))

    def test_mixedList(self) -> None:
        self.assertEqual(self.ranges([200, "300-308", 404]), ((200, 200), (300, 308), (404, 404)))

    def test_singleInt(self) -> None:
        self.assertEqual(self.ranges(204), ((204, 204),))

    def test_bounds(self) -> None:
        self.assertEqual(self.ranges(["100-599"]), ((100, 599),))


class HealthyTests(SynchronousTestCase):
    def test_default(self) -> None:
        health = HealthConfig()
        for code in (200, 204, 299, 301, 304, 399):
            self.assertTrue(health.healthy(code), code)
        for code in (100, 199, 400, 404, 500, 503, 599):
            self.assertFalse(health.healthy(code), code)

    def test_ranges(self) -> None:
        health = parse({"expect_status": [204, "300-302"]}).health
        self.assertEqual(
            [code for code in (200, 204, 205, 299, 300, 301, 302, 303) if health.healthy(code)],
            [204, 300, 301, 302],
        )

    def test_fiveHundredsExpected(self) -> None:
        """
        Any range may be healthy, even an odd one.
        """
        health = parse({"expect_status": "500-503"}).health
        self.assertTrue(health.healthy(503))
        self.assertFalse(health.healthy(200))


class ErrorTests(SynchronousTestCase):
    """
    Every mistake names its key and the reason.
    """

    def assertError(self, data: Dict[str, Any], key: str, reason: str) -> None:
        error = self.assertRaises(ConfigError, parse_config, data, "test.toml")
        self.assertEqual((error.path, error.key, error.reason), ("test.toml", key, reason))

    def test_unknownGlobalKey(self) -> None:
        self.assertError(
            document({"intervall": 1}),
            "health.intervall",
            f'unknown key (did you mean "interval"? {KNOWN})',
        )

    def test_unknownPoolKey(self) -> None:
        self.assertError(
            document(None, {"rsie": 1}),
            "pools.x.health.rsie",
            f'unknown key (did you mean "rise"? {KNOWN})',
        )

    def test_unknownKeyNoHint(self) -> None:
        self.assertError(
            document(None, {"zzz": 1}), "pools.x.health.zzz", f"unknown key ({KNOWN})"
        )

    def test_notATable(self) -> None:
        self.assertError(document(5), "health", "expected a table, got integer 5")
        self.assertError(
            document(None, "/healthz"),
            "pools.x.health",
            'expected a table, got string "/healthz"',
        )

    def test_intervalZero(self) -> None:
        self.assertError(
            document({"interval": 0}), "health.interval", "must be greater than 0, got 0"
        )

    def test_intervalNegative(self) -> None:
        self.assertError(
            document(None, {"interval": -1.5}),
            "pools.x.health.interval",
            "must be greater than 0, got -1.5",
        )

    def test_otherTimesPositive(self) -> None:
        for name in ("timeout", "ejection_time", "max_ejection_time"):
            self.assertError(
                document({name: 0}), f"health.{name}", "must be greater than 0, got 0"
            )

    def test_intervalNotANumber(self) -> None:
        self.assertError(
            document({"interval": "5"}), "health.interval", 'expected a number, got string "5"'
        )
        self.assertError(
            document({"interval": True}),
            "health.interval",
            "expected a number, got boolean true",
        )

    def test_intervalNotFinite(self) -> None:
        self.assertError(
            document({"interval": float("inf")}),
            "health.interval",
            "must be a finite number, got inf",
        )

    def test_riseZero(self) -> None:
        self.assertError(document({"rise": 0}), "health.rise", "must be from 1 to 1000, got 0")

    def test_countsRange(self) -> None:
        for name in ("rise", "fall", "passive_fail"):
            self.assertError(
                document(None, {name: 0}),
                f"pools.x.health.{name}",
                "must be from 1 to 1000, got 0",
            )
            self.assertError(
                document({name: 1001}), f"health.{name}", "must be from 1 to 1000, got 1001"
            )

    def test_countNotAnInteger(self) -> None:
        self.assertError(
            document({"fall": 2.0}), "health.fall", "expected an integer, got float 2.0"
        )

    def test_expectStatus99(self) -> None:
        self.assertError(
            document({"expect_status": 99}),
            "health.expect_status",
            "not a status range from 100 to 599: 99-99",
        )

    def test_expectStatusRangeOutOfBounds(self) -> None:
        self.assertError(
            document(None, {"expect_status": "600-700"}),
            "pools.x.health.expect_status",
            "not a status range from 100 to 599: 600-700",
        )

    def test_expectStatusReversed(self) -> None:
        self.assertError(
            document({"expect_status": "399-200"}),
            "health.expect_status",
            "not a status range from 100 to 599: 399-200",
        )

    def test_expectStatusText(self) -> None:
        self.assertError(
            document({"expect_status": "abc"}),
            "health.expect_status",
            'expected a status code (200) or a range ("200-399"), got string "abc"',
        )

    def test_expectStatusBadItem(self) -> None:
        self.assertError(
            document({"expect_status": [200, "abc"]}),
            "health.expect_status[1]",
            'expected a status code (200) or a range ("200-399"), got string "abc"',
        )
        self.assertError(
            document({"expect_status": [200, 700]}),
            "health.expect_status[1]",
            "not a status range from 100 to 599: 700-700",
        )

    def test_expectStatusBoolean(self) -> None:
        self.assertError(
            document({"expect_status": True}),
            "health.expect_status",
            'expected a status code (200) or a range ("200-399"), got boolean true',
        )

    def test_expectStatusEmpty(self) -> None:
        self.assertError(
            document({"expect_status": []}),
            "health.expect_status",
            "at least one status is required",
        )

    def test_pathWithoutSlash(self) -> None:
        self.assertError(
            document(None, {"path": "healthz"}),
            "pools.x.health.path",
            'must start with "/", got "healthz"',
        )

    def test_pathWhitespace(self) -> None:
        self.assertError(
            document({"path": "/health z"}), "health.path", "must not contain whitespace"
        )

    def test_pathNotAString(self) -> None:
        self.assertError(
            document({"path": 5}), "health.path", "expected a string, got integer 5"
        )

    def test_host(self) -> None:
        self.assertError(document({"host": ""}), "health.host", "must not be empty")
        self.assertError(
            document({"host": "a b"}), "health.host", "must not contain whitespace"
        )

    def test_timeoutLongerThanInterval(self) -> None:
        self.assertError(
            document({"interval": 2, "timeout": 3}),
            "health.timeout",
            "must not be longer than the interval (2s), got 3",
        )

    def test_timeoutEqualInterval(self) -> None:
        health = parse({"interval": 2, "timeout": 2}).health
        self.assertEqual((health.interval, health.timeout), (2.0, 2.0))

    def test_poolTimeoutLongerThanInterval(self) -> None:
        """
        The check applies to the merged settings of a pool.
        """
        self.assertError(
            document({"interval": 4}, {"timeout": 4.5}),
            "pools.x.health.timeout",
            "must not be longer than the interval (4s), got 4.5",
        )

    def test_maxEjectionShorter(self) -> None:
        self.assertError(
            document({"ejection_time": 20, "max_ejection_time": 10}),
            "health.max_ejection_time",
            "must not be shorter than ejection_time (20s), got 10",
        )

    def test_poolMaxEjectionShorter(self) -> None:
        self.assertError(
            document(None, {"max_ejection_time": 5}),
            "pools.x.health.max_ejection_time",
            "must not be shorter than ejection_time (10s), got 5",
        )

    def test_intervalShorterThanInheritedTimeout(self) -> None:
        """
        A pool that sets only its interval is told about its interval, not
        about a timeout it never wrote.
        """
        self.assertError(
            document({"timeout": 3}, {"interval": 2}),
            "pools.x.health.interval",
            "must not be shorter than the probe timeout (3s), got 2",
        )

    def test_ejectionLongerThanInheritedMax(self) -> None:
        self.assertError(
            document({"max_ejection_time": 30}, {"ejection_time": 60}),
            "pools.x.health.ejection_time",
            "must not be longer than max_ejection_time (30s), got 60",
        )

    def test_slowStartRange(self) -> None:
        for value, described in [
            (-1, "integer -1"),
            (3601, "integer 3601"),
            (True, "boolean true"),
            ("5", 'string "5"'),
            (float("nan"), "float nan"),
        ]:
            self.assertError(
                document(None, {"slow_start": value}),
                "pools.x.health.slow_start",
                f"expected seconds from 0 to 3600, got {described}",
            )

    def test_maxEjectionEqual(self) -> None:
        health = parse({"ejection_time": 30, "max_ejection_time": 30}).health
        self.assertEqual((health.ejection_time, health.max_ejection_time), (30.0, 30.0))


class FlatFormTests(SynchronousTestCase):
    """
    The BWSS flat form's pools get the C{[health]} settings.
    """

    def test_flatPoolsGetGlobalHealth(self) -> None:
        config = parse_config(
            {
                "health": {"interval": 3, "timeout": 1, "rise": 1},
                "targets": [
                    {"address": "http-api-1:8001", "health_check_endpoint": "/healthz"},
                    {"address": "object-storage:8007", "health_check_endpoint": "/ping"},
                ],
                "path_routes": [{"path": "/files", "address": "object-storage:8007"}],
            },
            "test.toml",
        )
        expected = HealthConfig(interval=3.0, timeout=1.0, rise=1)
        self.assertEqual(sorted(config.pools), ["default", "path_routes[0]"])
        self.assertEqual(config.health, expected)
        self.assertEqual(config.pools["default"].health, expected)
        self.assertEqual(config.pools["path_routes[0]"].health, expected)
        # Each target keeps its own endpoint; the pool has no path of its own.
        self.assertEqual(
            config.pools["default"].targets,
            (Target("http", "http-api-1", 8001, 1, "/healthz"),),
        )
        self.assertEqual(
            config.pools["path_routes[0]"].targets[0].health_check_endpoint, "/ping"
        )

    def test_flatFormDefaults(self) -> None:
        config = parse_config({"targets": ["a:1"]})
        self.assertEqual(config.pools["default"].health, HealthConfig())

    def test_flatNextToPools(self) -> None:
        config = parse_config(
            {
                "health": {"path": "/up"},
                "pools": {"x": {"targets": ["a:1"], "health": {"path": "/x"}}},
                "targets": ["b:1"],
            }
        )
        self.assertEqual(config.pools["x"].health.path, "/x")
        self.assertEqual(config.pools["default"].health.path, "/up")
