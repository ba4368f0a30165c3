"""
Routing end to end, on the shipped C{config.toml} and C{examples/bwss.toml}
(their ports moved to free ones): host- and path-based routes, 404 for
what matches nothing, round robin over a pool.
"""

from __future__ import annotations

from typing import Dict, List

from tests.e2e.harness import REPO_ROOT, E2ETestCase, freePorts, rewritePorts

MANGO = b"This is the mango application.\n"
APPLE = b"This is the apple application.\n"


class ShippedConfigTests(E2ETestCase):
    """
    The mango/apple setup of C{config.toml}, with its four C{[[demo]]}
    backends started by lbproxy itself.
    """

    def setUp(self) -> None:
        super().setUp()
        ports = freePorts(6)
        self.ports: Dict[int, int] = dict(zip((8080, 8081, 8082, 9081, 9082, 8443), ports))
        config = rewritePorts((REPO_ROOT / "config.toml").read_text(), self.ports)
        self.port = self.startProxy(config, self.ports[8080], ports[1:])

    def get(self, path: str, host: str = None):
        return self.curl(self.port, path, host=host)

    def assertServed(self, path: str, host: str, body: bytes) -> None:
        response = self.get(path, host)
        self.assertEqual(
            (response.status, response.body), (200, body), response.describe() + self.diag()
        )

    def assertNotFound(self, path: str, host: str = None) -> None:
        response = self.get(path, host)
        self.assertEqual(response.status, 404, response.describe() + self.diag())
        self.assertIn(b"Not Found", response.body, response.describe())

    def test_hostMango(self) -> None:
        """
        C{Host: www.mango.com} reaches the mango application.
        """
        self.assertServed("/", "www.mango.com", MANGO)

    def test_hostApple(self) -> None:
        self.assertServed("/", "www.apple.com", APPLE)

    def test_hostNotFound(self) -> None:
        """
        A host no route names gets 404 Not Found (there is no default pool).
        """
        self.assertNotFound("/", "www.notmango.com")

    def test_pathMango(self) -> None:
        self.assertServed("/mango", None, MANGO)

    def test_pathApple(self) -> None:
        self.assertServed("/apple", None, APPLE)

    def test_pathNotFound(self) -> None:
        self.assertNotFound("/notmango")

    def test_roundRobin(self) -> None:
        """
        Successive requests for www.mango.com alternate between the two
        mango backends.
        """
        names: List[str] = []
        for _ in range(4):
            response = self.get("/", "www.mango.com")
            self.assertEqual(response.status, 200, response.describe() + self.diag())
            names.extend(response.header("X-Demo-Backend"))
        self.assertEqual(set(names), {"mango1", "mango2"}, self.diag())
        for first, second in zip(names, names[1:]):
            self.assertNotEqual(first, second, f"not alternating: {names}")


class BWSSConfigTests(E2ETestCase):
    """
    C{examples/bwss.toml}: the flat C{[[targets]]} + C{[[path_routes]]}
    form.
    """

    def setUp(self) -> None:
        super().setUp()
        ports = freePorts(4)
        self.ports = dict(zip((8080, 8001, 8002, 8007), ports))
        config = rewritePorts((REPO_ROOT / "examples" / "bwss.toml").read_text(), self.ports)
        self.port = self.startProxy(config, self.ports[8080], ports[1:])

    def backends(self, path: str, count: int) -> List[str]:
        names = []
        for _ in range(count):
            response = self.curl(self.port, path, host="example.com")
            self.assertEqual(response.status, 200, response.describe() + self.diag())
            names.extend(response.header("X-Demo-Backend"))
        return names

    def test_apiRoundRobin(self) -> None:
        """
        C{/api/spells} alternates between the two API targets and never
        reaches object storage.
        """
        names = self.backends("/api/spells", 4)
        self.assertEqual(set(names), {"http-api-1", "http-api-2"}, self.diag())
        for first, second in zip(names, names[1:]):
            self.assertNotEqual(first, second, f"not alternating: {names}")

    def test_filesToObjectStorage(self) -> None:
        """
        C{/files/image.jpg} always goes to the object-storage target.
        """
        self.assertEqual(
            self.backends("/files/image.jpg", 3), ["object-storage"] * 3, self.diag()
        )
        response = self.curl(self.port, "/files/image.jpg")
        self.assertEqual(response.body, b"This is object-storage.\n", response.describe())
