"""Outgoing HTTP for webhooks, guarded against server-side request forgery: http(s) only, every
address the host resolves to checked, the connection made to a checked address (a second lookup
could answer differently: DNS rebinding), no redirects, bounded time and response size."""

import asyncio
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from mlcatalog import __version__
from mlcatalog.settings import WebhookSettings

log = logging.getLogger("mlcatalog.webhooks")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_ERROR = 500  # characters of an attempt's error kept


class Refused(Exception):
    """The URL may not be called: its scheme, or an address it resolves to."""


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: a status (the receiver answered) or an error (it did not)."""

    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def forbidden_kind(address: IpAddress) -> str | None:
    """Why an address is not for webhooks (loopback, private …), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address inside (mapped, or 6to4's 2002::/16) is the one to judge; site-local
        # (fec0::/10) is deprecated but still routed inside some networks.
        if address.is_site_local:
            return "site-local"
        address = address.ipv4_mapped or address.sixtofour or address
    for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:  # shared (100.64/10) and the other special ranges
        return "non-global"
    return None


class Sender:
    """POSTs signed bodies; one per process (its connection pool is shared by the hooks)."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.allowed = [ipaddress.ip_network(n) for n in settings.allow_networks]
        self.client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would connect for us, unchecked
            timeout=httpx.Timeout(
                settings.timeout_seconds, connect=settings.connect_timeout_seconds
            ),
            headers={"User-Agent": f"mlcatalog-webhooks/{__version__}"},
        )

    async def close(self) -> None:
        await self.client.aclose()

    def permitted(self, address: IpAddress) -> bool:
        return forbidden_kind(address) is None or any(address in n for n in self.allowed)

    async def resolve(self, host: str, port: int) -> IpAddress:
        """A checked address of ``host``; Refused when any of its addresses is forbidden."""
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except socket.gaierror as error:
                raise Refused(f"{host!r} does not resolve: {error.strerror}") from None
            addresses = list(dict.fromkeys(ipaddress.ip_address(i[4][0]) for i in infos))
        for address in addresses:
            # Every address, not only the one we would use: a name that also answers with a
            # private address is refused outright.
            if not self.permitted(address):
                # Which address, and of what kind, goes to the log only: the attempt's error is
                # read through the API, and would map the internal network's names.
                log.info("webhook to %r refused: %s is %s", host, address, forbidden_kind(address))
                raise Refused("the host resolves to a non-public address")
        if not addresses:
            raise Refused(f"{host!r} has no address")
        return addresses[0]

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        """One attempt, never raising: its status, or why it failed."""
        started = time.perf_counter()
        status, error = None, None
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                status = await self._post(url, body, headers)
        except Refused as refused:
            error = f"refused: {refused}"
        except TimeoutError:
            error = f"no answer within {self.settings.timeout_seconds:g} s"
        except (httpx.HTTPError, OSError, ValueError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        if status is not None and not 200 <= status < 300:
            error = f"HTTP {status}"
        elapsed = (time.perf_counter() - started) * 1000
        return Attempt(status, error[:MAX_ERROR] if error else None, elapsed)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused("only http and https URLs")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = await self.resolve(parts.hostname, port)
        # Connect to the address just checked; the name still goes in Host and, for https, in
        # SNI and the certificate check (httpcore's sni_hostname).
        netloc = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
        target = parts._replace(netloc=netloc).geturl()
        host = parts.netloc.rsplit("@", 1)[-1]
        sent = {**headers, "Host": host}
        extensions = {}
        if parts.scheme == "https":
            extensions["sni_hostname"] = parts.hostname
            # The pool keys connections by address: one verified for another name at the same
            # address must not carry this request, so a TLS connection serves one request.
            sent["Connection"] = "close"
        request = self.client.build_request(
            "POST", target, content=body, headers=sent, extensions=extensions
        )
        response = await self.client.send(request, stream=True)
        try:
            # Read no more than the cap: the body is not used, but draining a little lets the
            # connection be reused; a larger answer closes it.
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= self.settings.max_response_bytes:
                    break
        finally:
            await response.aclose()
        return response.status_code
