"""
Headless Chromium driven over the Chrome DevTools protocol, for the
browser tests: a minimal WebSocket client (RFC 6455: masked text frames
out, fragmented and control frames in) and the few protocol calls the
tests need (navigate, evaluate, screenshot).  Standard library only.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

__all__ = ["DevTools", "chromium_argv", "find_chromium", "page_socket_url"]

#: Seconds any one protocol call may take.
CALL_TIMEOUT = 20.0


def find_chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def chromium_argv(binary: str, profile: Path, width: int = 412, height: int = 915) -> List[str]:
    """
    Headless Chromium with a DevTools port of its choosing (written to
    C{profile/DevToolsActivePort}), a phone-sized window, nothing from the
    network but what the page asks for.
    """
    return [
        binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
        "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0", "--user-data-dir=%s" % (profile,),
        "--window-size=%d,%d" % (width, height), "about:blank",
    ]


def page_socket_url(profile: Path, deadline: float) -> str:
    """
    The DevTools WebSocket URL of the browser's first page, once it is up.
    """
    portFile = profile / "DevToolsActivePort"
    while True:
        try:
            port = int(portFile.read_text().split()[0])
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open("http://127.0.0.1:%d/json/list" % (port,), timeout=2) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except (OSError, ValueError, IndexError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("Chromium's DevTools did not come up")
        time.sleep(0.1)


class DevTools:
    """
    One page's DevTools session over a WebSocket.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._sock = socket.create_connection((parts.hostname, parts.port), timeout=CALL_TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        self._sock.sendall(
            (
                "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                % (parts.path, parts.netloc, key)
            ).encode("ascii")
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        head, self._buffer = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError("DevTools refused the WebSocket: %r" % (head[:200],))
        self._next = 0

    def close(self) -> None:
        try:
            self._sock.sendall(self._frame(0x8, b""))
        except OSError:
            pass
        self._sock.close()

    # Frames -----------------------------------------------------------------

    @staticmethod
    def _frame(opcode: int, payload: bytes) -> bytes:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + masked

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self._sock.recv(max(65536, count - len(self._buffer)))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def _message(self) -> bytes:
        parts: List[bytes] = []
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            if second & 0x80:
                mask = self._read(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(length)))
            else:
                payload = self._read(length)
            if opcode == 0x9:
                self._sock.sendall(self._frame(0xA, payload))
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode == 0xA:
                continue
            parts.append(payload)
            if first & 0x80:
                return b"".join(parts)

    # Protocol -----------------------------------------------------------------

    def call(self, method: str, **params: Any) -> Dict[str, Any]:
        """
        Call a DevTools method and return its result (events that arrive
        meanwhile are dropped).
        """
        self._next += 1
        ident = self._next
        message = json.dumps({"id": ident, "method": method, "params": params})
        self._sock.sendall(self._frame(0x1, message.encode("utf-8")))
        while True:
            answer = json.loads(self._message())
            if answer.get("id") == ident:
                if "error" in answer:
                    raise RuntimeError("%s: %s" % (method, answer["error"]))
                return answer.get("result", {})

    def navigate(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """
        The value of a JavaScript expression in the page.
        """
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError("page script failed: %s" % (result["exceptionDetails"],))
        return result["result"].get("value")

    def screenshot(self, path: Path) -> bytes:
        """
        A PNG of the whole page, written to C{path}.
        """
        data = base64.b64decode(
            self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        )
        path.write_bytes(data)
        return data
