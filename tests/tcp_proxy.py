"""A TCP forwarder that a test can cut and restore, to take PostgreSQL or Redis "down" for the
service under test without stopping the machine's real servers.

    with TcpProxy(5432) as pg:                    # the service gets postgresql://…@127.0.0.1:{pg.port}/…
        pg.cut()                                  # open connections dropped; new ones refused at once
        pg.cut(hang=True)                         # or: new connections accepted and never answered
        pg.restore()                              # forwarding again, on the same port
"""
from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._hang = False
        self._closed = False
        self._cuts = 0  # a connection accepted before a cut and set up after it is dropped too

    # --- control -------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def cut(self, *, hang: bool = False) -> None:
        """Drop every open connection; refuse new ones (or, with hang, accept them and stay silent)."""
        with self._lock:
            self._hang = hang
            self._cuts += 1
            conns, self._conns = self._conns, []
            listener = None
            if not hang:
                listener, self._listener = self._listener, None
        for conn in conns:
            _close(conn)
        if listener is not None:
            _close(listener)

    def restore(self) -> None:
        with self._lock:
            self._hang = False
            conns, self._conns = self._conns, []
        for conn in conns:  # connections accepted while hanging
            _close(conn)
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        self._closed = True
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- forwarding ----------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._listener is not listener  # accepted as the cut closed the listener
                if not refused:
                    self._conns.append(client)
                    if self._hang:
                        continue
                    cuts = self._cuts
            if refused:
                _close(client)
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                cut_meanwhile = self._cuts != cuts
                if not cut_meanwhile:
                    self._conns.append(upstream)
            if cut_meanwhile:
                _close(client)
                _close(upstream)
                continue
            threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
