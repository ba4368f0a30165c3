"""
Backends for the relay benchmark (L{bench.relays}) and end-to-end tests
(tests/e2e/test_relay_e2e.py), run as C{python -m bench.relayservers KIND
...}:

  - C{ws PORT}: a WebSocket echo server (the C{websockets} package); a
    message C{close:CODE} makes it close with that code; every close it
    sees is printed as C{closed CODE REASON};
  - C{echo PORT...}: TCP echo servers, printing C{accepted PORT} for each
    connection and C{echoed PORT BYTES} at its end;
  - C{tls-echo PORT CERT KEY}: a TLS echo server with its own
    certificate;
  - C{blast PORT MIB}: sends MIB MiB to every connection, then closes it.
"""

from __future__ import annotations

import asyncio
import ssl
import sys


async def _echo(reader, writer, port=None):
    if port is not None:
        print("accepted", port, flush=True)
    echoed = 0
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            echoed += len(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()
        if port is not None:
            print("echoed", port, echoed, flush=True)


async def _ws(port: int) -> None:
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    async def handler(ws):
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith("close:"):
                    await ws.close(int(message[6:]), "asked to close")
                    break
                await ws.send(message)
        except ConnectionClosed:
            pass
        print("closed", ws.close_code, ws.close_reason, flush=True)

    async with serve(handler, "127.0.0.1", port, max_size=None):
        print("listening", port, flush=True)
        await asyncio.Future()


async def _echoes(ports) -> None:
    servers = []
    for port in ports:
        servers.append(
            await asyncio.start_server(
                lambda r, w, port=port: _echo(r, w, port), "127.0.0.1", port
            )
        )
    print("listening", *ports, flush=True)
    await asyncio.Future()


async def _tlsEcho(port: int, cert: str, key: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    await asyncio.start_server(_echo, "127.0.0.1", port, ssl=context)
    print("listening", port, flush=True)
    await asyncio.Future()


async def _blast(port: int, mib: int) -> None:
    block = b"\xa5" * (1 << 20)

    async def send(reader, writer):
        try:
            for _ in range(mib):
                writer.write(block)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    await asyncio.start_server(send, "127.0.0.1", port)
    print("listening", port, flush=True)
    await asyncio.Future()


def main(argv) -> None:
    kind = argv[0]
    if kind == "ws":
        asyncio.run(_ws(int(argv[1])))
    elif kind == "echo":
        asyncio.run(_echoes([int(p) for p in argv[1:]]))
    elif kind == "blast":
        asyncio.run(_blast(int(argv[1]), int(argv[2])))
    elif kind == "tls-echo":
        asyncio.run(_tlsEcho(int(argv[1]), argv[2], argv[3]))
    else:
        raise SystemExit(f"unknown kind {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
