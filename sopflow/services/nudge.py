"""Nudges to `sopflow up`'s dispatcher from the processes sharing its home: runs were claimed (the intake), or an
approval was answered (the CLI, the intake's answer page).

The dispatcher polls the store, and its runner polls Prefect, every second anyway; a nudge only ends that wait,
so a lead's run starts, and an answered run goes on, within milliseconds. A nudge is one UDP datagram to
127.0.0.1 on the port `sopflow up` writes to `settings.dispatcher_port_file()`: sending never blocks or fails
the sender, and whatever arrives on the port only makes the dispatcher look at the store and the runner poll.
"""

from __future__ import annotations

import select
import socket

from sopflow import settings

CLAIMED, ANSWERED = b"claimed", b"answered"


def nudge_dispatcher(kind: bytes) -> None:
    """Tell the dispatcher of the `sopflow up` running on this home that runs were CLAIMED or an approval ANSWERED."""
    try:
        port = settings.dispatcher_port_file().read_text().strip()
    except OSError:  # no `sopflow up` on this home: nobody to tell
        return
    if port.isdigit() and 0 < int(port) < 65536:  # anything else is not a file `sopflow up` wrote
        send_nudge(int(port), kind)


def send_nudge(port: int, kind: bytes) -> None:
    """One datagram to 127.0.0.1:`port`; nothing happens when nobody listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(kind, ("127.0.0.1", port))
        except OSError:  # no dispatcher listening (any more): it polls the store anyway
            pass


class NudgeInbox:
    """Where nudges arrive: a UDP port on 127.0.0.1; `wait` returns early when one came."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]

    def wait(self, seconds: float) -> set[bytes]:
        """Wait up to `seconds` for nudges; the kinds of all that came (empty when none did)."""
        readable, _, _ = select.select([self._sock], [], [], max(seconds, 0.0))
        kinds: set[bytes] = set()
        while readable:
            try:
                kinds.add(self._sock.recv(64))
            except OSError:  # nothing more to read
                break
        return kinds

    def close(self) -> None:
        self._sock.close()
