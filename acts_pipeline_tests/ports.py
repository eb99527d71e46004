"""A local port that refuses connections, for tests of what an unreachable server does."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def refusing_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that this process holds bound but never listens on: a connection
    to it is refused at once, for as long as the block lasts. A port found free and let go (as
    `free_port()` does) can be taken by any server started meanwhile, on a busy machine too."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
