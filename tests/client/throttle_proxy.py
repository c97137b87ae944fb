"""A TCP proxy for end-to-end tests: it slows the server's answers down to a set rate, so
a download can be killed halfway, and it keeps what clients sent, so a test can see the
Range headers the server received. It can also cut one connection after so many bytes
(a transfer that breaks midway), and drop Range headers on their way to the server (a
server that does not do ranges)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time


class ThrottleProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.rate: float | None = None  # bytes per second towards clients; None: full speed
        self.sent_by_clients = bytearray()
        self.bytes_to_clients = 0
        self.cut_after: int | None = None  # cut the first connection to send this many bytes
        self.cuts = 0  # connections cut so far
        self.strip_range = False  # the server never sees a Range header
        self._lock = threading.Lock()
        self._closed = False
        self._open: set[tuple[socket.socket, socket.socket]] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        """Full speed state for the next test; connections an earlier test left open (a
        stalled read, a killed client) are cut, so the server stops sending on them."""
        with self._lock:
            left_open, self._open = self._open, set()
            self.sent_by_clients.clear()
            self.bytes_to_clients = 0
            self.cut_after = None
            self.cuts = 0
            self.strip_range = False
        for pair in left_open:
            for end in pair:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def requests_text(self) -> str:
        with self._lock:
            return self.sent_by_clients.decode("latin-1")

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self.reset()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._open.add((client, server))
            threading.Thread(target=self._pump_up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(server, client), daemon=True).start()

    def _pump_up(self, client: socket.socket, server: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(1 << 16):
                with self._lock:
                    self.sent_by_clients += data
                if self.strip_range:
                    data = _RANGE.sub(b"", data)
                server.sendall(data)
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_WR)

    def _still_open(self, pair: tuple[socket.socket, socket.socket]) -> bool:
        with self._lock:
            return pair in self._open

    def _pause(self, seconds: float, pair: tuple[socket.socket, socket.socket]) -> None:
        """Sleep `seconds` in short steps, ending early once `reset` cuts the connection."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0 and self._still_open(pair):
            time.sleep(min(left, _STEP_SECONDS))

    def _pump_down(self, server: socket.socket, client: socket.socket) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while data := server.recv(1 << 16):
                rate = self.rate
                if rate:
                    self._pause(len(data) / rate, (client, server))
                with self._lock:
                    cut = self.cut_after is not None and sent + len(data) >= self.cut_after
                    if cut and self.cut_after is not None:
                        data = data[: self.cut_after - sent]
                        self.cut_after = None
                        self.cuts += 1
                client.sendall(data)
                sent += len(data)
                with self._lock:
                    self.bytes_to_clients += len(data)
                if cut:
                    break
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
        client.close()
        server.close()


_STEP_SECONDS = 0.05


_RANGE = re.compile(rb"(?im)^range:[^\r\n]*\r\n")
