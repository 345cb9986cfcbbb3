"""Run a command with stderr on a pseudo-terminal, as a person at a shell would: what is
drawn only for a terminal (progress bars) shows up, while stdout stays a pipe to assert on."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
import threading
from collections.abc import Mapping, Sequence


def run_on_terminal(command: Sequence[str], env: Mapping[str, str], timeout: float = 120,
                    rows: int = 40, columns: int = 120) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """The finished process (stdout captured) and every byte it wrote to the terminal."""
    leader, follower = pty.openpty()
    # A terminal of a known width: a bar sizes itself to it.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        # Read while the command runs: a full terminal buffer would block its writes.
        try:
            while chunk := os.read(leader, 65536):
                chunks.append(chunk)
        except OSError:  # the terminal is closed once the command has exited
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        with subprocess.Popen(list(command), stderr=follower, stdout=subprocess.PIPE, env=dict(env)) as proc:
            os.close(follower)
            follower = -1
            try:
                stdout, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        reader.join(timeout=10)
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout), b"".join(chunks)
