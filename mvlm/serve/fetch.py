"""Fetch a video from an http(s) URL for `mvlm serve`, without becoming a proxy into the LAN.

Rules (docs/reliability.md, "Server"; docs/demo.md, "Video sources"):

* only ``http`` and ``https`` URLs, no user:password part;
* the host name is resolved once (`RESOLVE`, ``socket.getaddrinfo``) and EVERY address it
  resolves to must be public: loopback, private, link-local, shared (CGNAT), multicast,
  reserved and unspecified addresses are refused, IPv4-mapped IPv6 addresses by their IPv4;
* the connection goes to that resolved address (pinned): the socket is opened to the IP, the
  ``Host`` header and TLS server name stay the URL's name, so a second DNS answer (rebinding)
  is never used; redirects (at most `MAX_REDIRECTS`) go through the same checks again;
* a size limit (the upload limit) and a wall-clock limit for the whole transfer; the body is
  streamed to disk and the partial file is removed on any failure.

Every refusal is a `FetchError` with a one-line reason (the server answers it as 4xx).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urljoin, urlsplit

MAX_REDIRECTS = 3
MAX_URL_LENGTH = 2048

# seams for the tests: name resolution and the TCP connect (both from the standard library)
RESOLVE: Callable = socket.getaddrinfo
CONNECT: Callable = socket.create_connection


class FetchError(ValueError):
    """The URL is refused or the transfer failed; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Target:
    scheme: str
    host: str  # as written in the URL (Host header, TLS server name)
    port: int
    path: str  # path + query, what goes on the request line
    address: str  # the pinned IP


def address_problem(ip: str) -> Optional[str]:
    """Why a connection to `ip` is refused; None for a public address."""
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return f"{ip!r} is not an IP address"
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for flag, what in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"),
                       ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                       ("is_reserved", "reserved"), ("is_private", "private")):
        if getattr(addr, flag):
            return f"{addr} is a {what} address"
    if not addr.is_global:  # e.g. 100.64.0.0/10 (shared address space)
        return f"{addr} is not a public address"
    return None


def check_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path+query) of an acceptable URL, else `FetchError`."""
    if not isinstance(url, str) or not url.strip():
        raise FetchError("URL is empty")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise FetchError("URL is too long or contains spaces / control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"URL {url!r:.100} is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"URL scheme {parts.scheme or 'none'!r} refused: only http and https")
    if parts.username is not None or parts.password is not None:
        raise FetchError("URL with a user name or password refused")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FetchError(f"URL {url!r:.100} has no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or (443 if scheme == "https" else 80), path


def resolve_public(host: str, port: int) -> str:
    """Resolve `host` once; every address must be public. Returns the one to connect to."""
    try:
        infos = RESOLVE(host, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise FetchError(f"cannot resolve {host!r}: {exc}") from exc
    addresses = []
    for info in infos:
        ip = str(info[4][0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise FetchError(f"{host!r} resolves to no address")
    for ip in addresses:
        problem = address_problem(ip)
        if problem:
            raise FetchError(f"URL host {host!r} refused: {problem} (only public addresses are fetched)", 403)
    return addresses[0]


def target_of(url: str) -> Target:
    scheme, host, port, path = check_url(url)
    return Target(scheme, host, port, path, resolve_public(host, port))


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.pinned = target.address

    def connect(self) -> None:
        self.sock = CONNECT((self.pinned, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self.pinned = target.address

    def connect(self) -> None:
        raw = CONNECT((self.pinned, self.port), self.timeout)
        # the certificate is checked against the URL's name, not the pinned IP
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def fetch_to_file(url: str, dest: Path, limit_bytes: int, time_limit: float = 60.0,
                  read_timeout: float = 10.0) -> dict:
    """Download `url` into `dest` under the rules above -> {url, bytes, content_type, address}."""
    deadline = time.monotonic() + time_limit
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        target = target_of(current)
        cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        conn = cls(target, timeout=read_timeout)
        try:
            try:
                conn.request("GET", target.path, headers={"User-Agent": "mvlm-serve", "Accept": "*/*"})
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise FetchError(f"cannot fetch {current!r:.120}: {exc}", 502) from exc
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise FetchError(f"{current!r:.120}: redirect without a Location", 502)
                current = urljoin(current, location)
                continue
            if response.status != 200:
                raise FetchError(f"{current!r:.120}: the server answered {response.status} {response.reason}", 502)
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit_bytes:
                raise FetchError(f"{current!r:.120}: {int(declared)} bytes exceeds the limit of {limit_bytes} bytes", 413)
            size = _stream(response, dest, limit_bytes, deadline, current)
            return {"url": current, "bytes": size, "content_type": response.getheader("Content-Type", ""),
                    "address": target.address}
        finally:
            conn.close()
    raise FetchError(f"{url!r:.120}: more than {MAX_REDIRECTS} redirects", 502)


def _stream(response, dest: Path, limit: int, deadline: float, url: str) -> int:
    size = 0
    try:
        with open(dest, "wb") as fh:
            while True:
                if time.monotonic() > deadline:
                    raise FetchError(f"{url!r:.120}: download took longer than the time limit", 504)
                try:
                    chunk = response.read1(64 * 1024)  # what is there: a trickle cannot hold one read
                except (OSError, http.client.HTTPException) as exc:
                    raise FetchError(f"{url!r:.120}: transfer failed: {exc}", 502) from exc
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"{url!r:.120}: more than the limit of {limit} bytes", 413)
                fh.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    if size == 0:
        dest.unlink(missing_ok=True)
        raise FetchError(f"{url!r:.120}: empty body", 502)
    return size
