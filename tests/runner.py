"""A ``python app.py`` or ``quart-flet ...`` process, as a person starts it:
its own process group, stdout read line by line (the URL it prints is the
signal that it listens), stopped with SIGINT as by Ctrl-C."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conftest import ROOT


@dataclass
class Command:
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    lines: list[str] = field(default_factory=list)
    pending: bytes = b""  # read from the pipe, not yet a whole line

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def log(self) -> str:
        """What conftest.wait_for_log reads of a server: here its stderr."""
        return self.stderr()

    def wait_for_line(self, prefix: str, timeout: float = 60) -> str:
        """The next stdout line starting with ``prefix``: blocks on the pipe
        (select with a deadline), no polling."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                while b"\n" in self.pending:
                    raw, self.pending = self.pending.split(b"\n", 1)
                    line = raw.decode(errors="replace")
                    self.lines.append(line)
                    if line.startswith(prefix):
                        return line
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no {prefix!r} line: {self.lines}\n{self.stderr()}"
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 65536)
                assert chunk, f"exited before {prefix!r}: {self.lines}\n{self.stderr()}"
                self.pending += chunk

    def url(self) -> str:
        """The URL of the ``quart-flet: serving <url> (Ctrl-C to stop)`` line."""
        return self.wait_for_line("quart-flet: serving").split()[2]

    def interrupt(self, timeout: float = 20) -> int:
        """Ctrl-C: SIGINT to the whole process group, as a terminal sends it."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def rest_of_stdout(self) -> str:
        assert self.proc.stdout is not None and self.proc.poll() is not None
        rest = (self.pending + self.proc.stdout.read()).decode(errors="replace")
        return "\n".join(self.lines) + "\n" + rest


@contextmanager
def command(
    args: Sequence[str], tmp_path: Path, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Iterator[Command]:
    """``python *args`` with this checkout importable; stopped (and its whole
    group killed if need be) when the block ends."""
    stderr_path = tmp_path / f"stderr-{time.monotonic_ns()}.log"
    environment = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    }
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=stderr,
            bufsize=0,
            start_new_session=True,
        )
    running = Command(proc, stderr_path)
    try:
        yield running
    finally:
        running.interrupt()
        if proc.stdout is not None:
            proc.stdout.close()


def run_to_end(
    args: Sequence[str], env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
