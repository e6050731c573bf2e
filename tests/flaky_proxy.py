"""A loopback TCP proxy that makes a healthy emulator look like a bad network.

Tests point a store's endpoint at the proxy instead of the emulator. On any request the
proxy may close it (drop), close it with an RST (reset: SO_LINGER 0), or hold each chunk
of bytes back for a while (delay), decided by a seeded RNG within bounded budgets, so a
run is reproducible and always ends: once the budgets are spent, or after `heal()`, it
forwards faithfully. Everything listens and connects on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

_CHUNK = 16 * 1024
_LOOPBACK = "127.0.0.1"


@dataclass
class Faults:
    """Chances per request chunk sent upstream (drop, reset) or per chunk either way (delay),
    and budgets that bound how many of each a run may inject."""

    drop: float = 0.0
    reset: float = 0.0
    delay: float = 0.0
    delay_s: tuple[float, float] = (0.001, 0.02)
    max_drops: int = 0
    max_resets: int = 0
    max_delays: int = 0
    # A dropped or reset connection dies after forwarding up to this many request bytes, so a
    # fault can strike before a request reaches the server or halfway through its body.
    cut_after_bytes: tuple[int, int] = (0, 4096)


@dataclass
class ProxyStats:
    connections: int = 0
    drops: int = 0
    resets: int = 0
    delays: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass
class _Conn:
    client: socket.socket
    upstream: socket.socket
    # "", "drop" or "reset", and after how many request bytes.
    fault: str = ""
    cut_at: int = 0
    sent_up: int = 0
    closed: threading.Event = field(default_factory=threading.Event)


class FlakyProxy:
    def __init__(self, upstream_port: int, seed: int = 0, faults: Faults | None = None) -> None:
        self.upstream_port = upstream_port
        self.faults = faults or Faults()
        self.stats = ProxyStats()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._conns: list[_Conn] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((_LOOPBACK, 0))
        self._listener.listen(128)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._accepter = threading.Thread(target=self._accept_loop, name="flaky-proxy-accept", daemon=True)
        self._accepter.start()

    # -- control ------------------------------------------------------------------------

    def inject(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults

    def heal(self) -> None:
        """Forward faithfully from now on (open connections keep any fault already decided)."""
        self.inject(Faults())

    def wait_quiet(self, quiet_s: float = 0.3, timeout_s: float = 15.0) -> None:
        """Returns once no byte has moved for `quiet_s`.

        A writer killed mid-request may leave bytes the proxy already read and still
        holds back: they reach the server after the writer died, as they could through a
        real load balancer. A test that reads the pool right after a kill waits for them.
        """
        deadline = time.monotonic() + timeout_s
        last = (-1, -1)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            with self._lock:
                now = (self.stats.bytes_up, self.stats.bytes_down)
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return
            time.sleep(0.02)

    def rewrite(self, url: str) -> str:
        """The same endpoint URL, pointed at this proxy."""
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"{_LOOPBACK}:{self.port}"))

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        self._accepter.join(timeout=5)
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            self._close(conn, reset=False)
        for t in threads:
            t.join(timeout=5)

    def __enter__(self) -> FlakyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- forwarding ---------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection((_LOOPBACK, self.upstream_port), timeout=5)
            except OSError:
                self._rst(client)
                continue
            for s in (client, upstream):
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(client, upstream)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self.stats.connections += 1
                self._conns.append(conn)
                for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                    t = threading.Thread(target=self._pump, args=(conn, src, dst, up), daemon=True)
                    self._threads.append(t)
                    t.start()

    def _decide_fault(self) -> tuple[str, int]:
        f, s = self.faults, self.stats
        roll = self._rng.random()
        cut = self._rng.randint(*f.cut_after_bytes)
        if roll < f.reset and s.resets < f.max_resets:
            s.resets += 1
            return "reset", cut
        if roll < f.reset + f.drop and s.drops < f.max_drops:
            s.drops += 1
            return "drop", cut
        return "", 0

    def _delay_for_chunk(self) -> float:
        with self._lock:
            f, s = self.faults, self.stats
            if f.delay and s.delays < f.max_delays and self._rng.random() < f.delay:
                s.delays += 1
                return self._rng.uniform(*f.delay_s)
        return 0.0

    def _pump(self, conn: _Conn, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while not conn.closed.is_set():
                data = src.recv(_CHUNK)
                if not data:
                    # Half-close: the other direction may still carry a response.
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                pause = self._delay_for_chunk()
                if pause:
                    time.sleep(pause)
                if up and not conn.fault:
                    # Connections are kept alive across requests, so faults strike per chunk
                    # sent, not per connection: any request may be the one that fails.
                    with self._lock:
                        conn.fault, cut = self._decide_fault()
                    conn.cut_at = conn.sent_up + cut
                if conn.fault:
                    room = conn.cut_at - conn.sent_up
                    if not up or len(data) >= room:
                        # Cut before the response, too: the server did the work, the client
                        # never hears of it (the ambiguous put the commit protocol handles).
                        if up and room > 0:
                            dst.sendall(data[:room])
                        self._close(conn, reset=conn.fault == "reset")
                        return
                    conn.sent_up += len(data)
                dst.sendall(data)
                with self._lock:
                    if up:
                        self.stats.bytes_up += len(data)
                    else:
                        self.stats.bytes_down += len(data)
        except OSError:
            self._close(conn, reset=False)

    def _close(self, conn: _Conn, reset: bool) -> None:
        if conn.closed.is_set():
            return
        conn.closed.set()
        if reset:
            self._rst(conn.client)
        for s in (conn.client, conn.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        with self._lock, contextlib.suppress(ValueError):
            self._conns.remove(conn)

    @staticmethod
    def _rst(sock: socket.socket) -> None:
        # Linger on, timeout 0: close() sends RST instead of FIN, as a crashed middlebox would.
        # SHUT_RD first wakes our own thread blocked in recv() on it: until that returns the
        # kernel keeps the socket open, and the client would wait for its read timeout.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RD)
        sock.close()
