"""One keep-alive HTTP/1.1 connection to the Trainwatch API, written on a plain socket (standard library only).

http.client would do, but it parses every reply's headers through the email package: 870 µs of CPU per request
against 230 µs for this (measured on the 2-core VM under load), and the sender's CPU is what a training pays for
being watched (bench/python_client.py). Only what the API speaks is handled: a request with a Content-Length body,
a reply with Content-Length or chunked, keep-alive until either side closes.

A reply is (status, envelope): the parsed JSON body, or None when there was none. Anything that means "the server
is not there right now" (refused, reset, timed out, a reply that is not JSON from a proxy) is a ServerAway, which the
callers retry; an HTTP status is never an exception here.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit


class ServerAway(Exception):
    """The request did not get an answer from the API."""


class _Closed(OSError):
    pass


class Api:
    def __init__(self, url: str, token: Optional[str], timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"trainwatch: url must be http(s)://host[:port], got {url!r}")
        self.url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/") + "/api/v1"
        self._timeout = timeout
        host = self._host if parts.port is None else f"{self._host}:{parts.port}"
        head = [f"Host: {host}", "Content-Type: application/json", "Accept: application/json", "User-Agent: trainwatch-python"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        self._head = ("\r\n".join(head) + "\r\n").encode("latin-1")
        self._sock: Optional[socket.socket] = None
        self._file: Any = None

    def _connect(self, timeout: float) -> None:
        sock = socket.create_connection((self._host, self._port), timeout=timeout)
        # Small request, small reply, one at a time: Nagle would hold the body back waiting for an ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._https:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self._host)
        self._sock = sock
        self._file = sock.makefile("rb")

    def request(self, method: str, path: str, body: Optional[bytes] = None, timeout: Optional[float] = None) -> Tuple[int, Optional[Dict[str, Any]]]:
        t = self._timeout if timeout is None else timeout
        # A kept-alive connection the server has closed (it restarted, or its idle timer ran) fails on first use:
        # one fresh connection is tried before the server counts as away.
        for attempt in (0, 1):
            reused = self._sock is not None
            try:
                if self._sock is None:
                    self._connect(t)
                else:
                    self._sock.settimeout(t)
                data = body or b""
                self._sock.sendall(b"%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s" % (method.encode(), (self._prefix + path).encode(), self._head, len(data), data))
                status, raw, close = self._read_reply(method)
                if close:
                    self.close()
            except (OSError, ValueError) as e:  # ValueError: a reply that is not HTTP
                self.close()
                if reused and attempt == 0 and not isinstance(e, socket.timeout):
                    continue
                raise ServerAway(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None
            if not raw:
                return status, None
            try:
                return status, json.loads(raw)
            except ValueError:
                if status >= 500:
                    raise ServerAway(f"HTTP {status} with a body that is not JSON") from None
                return status, {"success": False, "error": {"code": f"HTTP_{status}", "message": raw[:200].decode("utf-8", "replace"), "details": None}}
        raise AssertionError("unreachable")

    def _read_reply(self, method: str) -> Tuple[int, bytes, bool]:
        f = self._file
        line = f.readline(65537)
        if not line:
            raise _Closed("the server closed the connection")
        version, code = line.split(None, 2)[:2]
        status = int(code)
        length: Optional[int] = None
        chunked = False
        close = version == b"HTTP/1.0"
        while True:
            h = f.readline(65537)
            if h in (b"\r\n", b"\n"):
                break
            if not h:
                raise _Closed("the reply ended inside its headers")
            name, _, value = h.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, b"", close
        if chunked:
            parts = []
            while True:
                size = int(f.readline(65537).split(b";")[0], 16)
                if size == 0:
                    while f.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self._exact(size))
                f.readline(65537)
            return status, b"".join(parts), close
        if length is None:  # delimited by the close
            return status, f.read(), True
        return status, self._exact(length), close

    def _exact(self, n: int) -> bytes:
        data = self._file.read(n)
        if len(data) < n:
            raise _Closed("the reply ended inside its body")
        return data

    def close(self) -> None:
        for x in (self._file, self._sock):
            if x is not None:
                try:
                    x.close()
                except OSError:
                    pass
        self._file = self._sock = None


def error_of(envelope: Optional[Dict[str, Any]], status: int) -> Dict[str, Any]:
    """The envelope's error object, or one made up from the status."""
    err = (envelope or {}).get("error") if isinstance(envelope, dict) else None
    if isinstance(err, dict):
        return err
    return {"code": f"HTTP_{status}", "message": f"HTTP {status}", "details": None}
