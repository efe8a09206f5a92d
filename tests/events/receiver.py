"""A webhook receiver on 127.0.0.1 for tests and the benchmark: a raw asyncio HTTP server that
keeps every request and answers the statuses it is told to, in turn."""

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    # Statuses to answer, first to last; when they run out, ``status``.
    script: deque[int] = field(default_factory=deque)
    status: int = 200
    received: list[Received] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    server: asyncio.Server | None = None
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> "Receiver":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append(Received(request_line.split(" ")[1], headers, body))
                self.arrived.set()
                status = self.script.popleft() if self.script else self.status
                extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n{extra}\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _serve_forever() -> None:
    receiver = await Receiver().start()
    print(receiver.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # For bench/webhooks.py: a receiver in a process of its own that answers 200 to everything.
    asyncio.run(_serve_forever())
