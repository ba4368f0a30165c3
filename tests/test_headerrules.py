"""
Tests for L{lbproxy.policy.headerrules}.
"""

from __future__ import annotations

import re

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.policy.headerrules import HeaderRules, Template, VARIABLES, new_request_id

VARS = {
    "client_ip": b"192.0.2.7",
    "request_id": b"0123abcd",
    "host": b"www.example.com",
    "scheme": b"https",
    "method": b"GET",
    "path": b"/a/b",
    "pool": b"mango",
    "target": b"127.0.0.1:8081",
}


class TemplateTests(SynchronousTestCase):
    """
    Tests for L{Template}.
    """

    def test_literal(self) -> None:
        """
        A value without variables renders as its UTF-8 bytes.
        """
        template = Template("prod \u00e9\tx")
        self.assertEqual(template.variables, frozenset())
        self.assertEqual(template.render({}), "prod \u00e9\tx".encode("utf-8"))

    def test_variables(self) -> None:
        """
        Every known variable is substituted.
        """
        source = " ".join("{" + name + "}" for name in sorted(VARIABLES))
        template = Template(source)
        self.assertEqual(template.variables, VARIABLES)
        self.assertEqual(
            template.render(VARS), b" ".join(VARS[name] for name in sorted(VARIABLES))
        )

    def test_mixed(self) -> None:
        """
        Literal text and variables mix.
        """
        template = Template("for={client_ip};proto={scheme}")
        self.assertEqual(template.render(VARS), b"for=192.0.2.7;proto=https")

    def test_escapedBraces(self) -> None:
        """
        Doubled braces are literal braces, also around a variable.
        """
        self.assertEqual(Template("{{client_ip}}").render({}), b"{client_ip}")
        self.assertEqual(Template("{{{client_ip}}}").render(VARS), b"{192.0.2.7}")
        self.assertEqual(Template("a}}b{{c").render({}), b"a}b{c")

    def test_unknownVariable(self) -> None:
        """
        Unknown variables, in any spelling, are refused.
        """
        for source in ["{nope}", "x {Client_IP}", "{}", "{ client_ip }", "{client-ip}"]:
            with self.assertRaises(ValueError, msg=source) as caught:
                Template(source)
            self.assertIn("unknown variable", str(caught.exception))

    def test_unmatchedBrace(self) -> None:
        """
        A brace that is neither doubled nor part of a variable is refused.
        """
        for source in ["{", "}", "{client_ip", "client_ip}", "a { b", "{{client_ip}"]:
            with self.assertRaises(ValueError, msg=source) as caught:
                Template(source)
            self.assertIn("unmatched", str(caught.exception))

    def test_controlCharacters(self) -> None:
        """
        Control characters in the literal text are refused.
        """
        for source in ["a\r\nb", "a\nb", "\x00", "x\x7f"]:
            self.assertRaises(ValueError, Template, source)

    def test_missingVariable(self) -> None:
        """
        A variable the caller does not supply refuses the value.
        """
        self.assertIsNone(Template("{pool}").render({"client_ip": b"x"}))

    def test_injectionRefused(self) -> None:
        """
        A value that holds CR, LF or NUL once substituted is refused.
        """
        template = Template("path={path}")
        for path in [b"/a\r\nX-Evil: 1", b"/a\nb", b"/a\rb", b"/a\x00b"]:
            self.assertIsNone(template.render({"path": path}), path)
        self.assertEqual(template.render({"path": b"/a\tb"}), b"path=/a\tb")


class HeaderRulesTests(SynchronousTestCase):
    """
    Tests for L{HeaderRules}.
    """

    REQUEST = [
        (b"Host", b"www.example.com"),
        (b"X-Debug", b"1"),
        (b"x-env", b"dev"),
        (b"Accept", b"*/*"),
        (b"X-ENV", b"test"),
    ]

    def test_empty(self) -> None:
        """
        Without rules, headers are copied unchanged.
        """
        rules = HeaderRules()
        self.assertFalse(rules)
        result = rules.applyRequest(self.REQUEST, VARS)
        self.assertEqual(result, self.REQUEST)
        self.assertIsNot(result, self.REQUEST)
        self.assertEqual(rules.variables, frozenset())

    def test_setReplacesAll(self) -> None:
        """
        Set drops every header of that name, in any case, and appends one.
        """
        rules = HeaderRules(requestSet={"X-Env": "prod"})
        self.assertTrue(rules)
        self.assertEqual(
            rules.applyRequest(self.REQUEST, VARS),
            [
                (b"Host", b"www.example.com"),
                (b"X-Debug", b"1"),
                (b"Accept", b"*/*"),
                (b"X-Env", b"prod"),
            ],
        )

    def test_setAbsent(self) -> None:
        """
        Set adds the header when there was none.
        """
        rules = HeaderRules(requestSet=[("X-New", "v")])
        self.assertEqual(rules.applyRequest([], VARS), [(b"X-New", b"v")])

    def test_addAppends(self) -> None:
        """
        Add appends, one header per item of a list.
        """
        rules = HeaderRules(requestAdd={"X-Env": ["a", "b"], "X-Other": "c"})
        self.assertEqual(
            rules.applyRequest(self.REQUEST, VARS),
            self.REQUEST + [(b"X-Env", b"a"), (b"X-Env", b"b"), (b"X-Other", b"c")],
        )

    def test_removeDrops(self) -> None:
        """
        Remove drops every header of the names, in any case.
        """
        rules = HeaderRules(requestRemove=["x-debug", "X-Env", "X-Absent"])
        self.assertEqual(
            rules.applyRequest(self.REQUEST, VARS),
            [(b"Host", b"www.example.com"), (b"Accept", b"*/*")],
        )

    def test_order(self) -> None:
        """
        Remove, then set, then add.
        """
        rules = HeaderRules(
            requestSet={"X-A": "set"},
            requestAdd={"X-A": "added", "X-B": "added"},
            requestRemove=["X-B"],
        )
        self.assertEqual(
            rules.applyRequest([(b"X-A", b"old"), (b"X-B", b"old")], VARS),
            [(b"X-A", b"set"), (b"X-A", b"added"), (b"X-B", b"added")],
        )

    def test_variables(self) -> None:
        """
        Variables are substituted in request and response rules.
        """
        rules = HeaderRules(
            requestSet={"X-Request-Id": "{request_id}", "X-Real-IP": "{client_ip}"},
            responseAdd={"X-Served-By": "{pool}/{target}"},
        )
        self.assertEqual(rules.variables, {"request_id", "client_ip", "pool", "target"})
        self.assertEqual(
            rules.applyRequest([(b"x-real-ip", b"6.6.6.6")], VARS),
            [(b"X-Request-Id", b"0123abcd"), (b"X-Real-IP", b"192.0.2.7")],
        )
        self.assertEqual(
            rules.applyResponse([(b"Server", b"x")], VARS),
            [(b"Server", b"x"), (b"X-Served-By", b"mango/127.0.0.1:8081")],
        )

    def test_refusedValueStillReplaces(self) -> None:
        """
        A set rule whose value is refused still drops the headers it would
        have replaced, so a client's own never gets through.
        """
        rules = HeaderRules(requestSet={"X-Path": "{path}"}, requestAdd={"X-Pool": "{pool}"})
        result = rules.applyRequest(
            [(b"X-Path", b"spoofed")], {"path": b"/x\r\nEvil: 1"}
        )
        self.assertEqual(result, [])

    def test_directionsIndependent(self) -> None:
        """
        Request rules do not touch responses, nor the other way round.
        """
        rules = HeaderRules(requestRemove=["Server"], responseRemove=["Server"],
                            responseSet={"X-Frame-Options": "DENY"})
        response = [(b"Server", b"Apache"), (b"Content-Type", b"text/html")]
        self.assertEqual(
            rules.applyResponse(response, {}),
            [(b"Content-Type", b"text/html"), (b"X-Frame-Options", b"DENY")],
        )
        self.assertEqual(rules.applyRequest([(b"Accept", b"*/*")], {}), [(b"Accept", b"*/*")])

    def test_hostSet(self) -> None:
        """
        A request's Host may be rewritten, not added or removed.
        """
        rules = HeaderRules(requestSet={"Host": "backend.internal"})
        self.assertEqual(
            rules.applyRequest([(b"host", b"www.example.com")], VARS),
            [(b"Host", b"backend.internal")],
        )
        self.assertRaises(ValueError, HeaderRules, requestAdd={"Host": "x"})
        self.assertRaises(ValueError, HeaderRules, requestRemove=["host"])
        HeaderRules(responseRemove=["Host"])

    def test_managedHeaders(self) -> None:
        """
        Framing and hop-by-hop headers are lbproxy's own.
        """
        for name in ["Content-Length", "transfer-encoding", "Connection", "TE", "Upgrade"]:
            self.assertRaises(ValueError, HeaderRules, requestSet={name: "x"})
            self.assertRaises(ValueError, HeaderRules, responseAdd={name: "x"})
            self.assertRaises(ValueError, HeaderRules, responseRemove=[name])

    def test_invalidNames(self) -> None:
        """
        Names that are not tokens are refused.
        """
        # "X-A\n": a trailing newline once passed a "$"-anchored pattern.
        for name in ["", "X Env", "X-Env:", "X\u00e9", "X\r\nY", "X-A\n"]:
            self.assertRaises(ValueError, HeaderRules, requestSet={name: "x"})
            self.assertRaises(ValueError, HeaderRules, responseRemove=[name])

    def test_setTwice(self) -> None:
        """
        A name set twice, in any case, is refused.
        """
        self.assertRaises(ValueError, HeaderRules, requestSet=[("X-A", "1"), ("x-a", "2")])

    def test_badTemplate(self) -> None:
        """
        Bad templates are refused when the rules are built.
        """
        self.assertRaises(ValueError, HeaderRules, responseSet={"X-A": "{nope}"})
        self.assertRaises(ValueError, HeaderRules, requestAdd={"X-A": ["ok", "{"]})


class NewRequestIdTests(SynchronousTestCase):
    """
    Tests for L{new_request_id}.
    """

    def test_format(self) -> None:
        """
        32 lower-case hex digits.
        """
        self.assertTrue(re.match(rb"^[0-9a-f]{32}$", new_request_id()))

    def test_unique(self) -> None:
        """
        Ids do not repeat.
        """
        self.assertEqual(len({new_request_id() for _ in range(1000)}), 1000)
