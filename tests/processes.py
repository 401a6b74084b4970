"""The project's long-running commands as real subprocesses (`monitor run`, Celery workers),
each in its own process group so that a test can SIGKILL it whole, pool and all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path


class Processes:
    """Started commands, their logs in `tmp/<name>.log`, and stop / kill for all of them."""

    def __init__(self, env: dict[str, str], tmp: Path, supervised: bool = False):
        self.env, self.tmp = env, tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.commands: dict[int, tuple[list[str], str]] = {}
        # supervised: a process that exits by itself is started again, as the compose file's
        # `restart: unless-stopped` (or systemd's Restart=always) does in production.
        self.restarts = 0
        self._stopping = threading.Event()
        if supervised:
            threading.Thread(target=self._supervise, daemon=True).start()

    def spawn(self, cmd: list[str], name: str) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"{name}.log", "ab") as log:
            p = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.commands[p.pid] = (cmd, name)
        self.procs.append(p)
        return p

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            for p in list(self.procs):
                if p.poll() is not None and not self._stopping.is_set():
                    cmd, name = self.commands[p.pid]
                    self.restarts += 1
                    self.procs.remove(p)
                    self.spawn(cmd, name)

    def alive(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def kill(self) -> None:
        """SIGKILL every process group: the machine is gone, acknowledgements and all."""
        for p in list(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        self.procs.clear()

    def stop(self) -> None:
        self._stopping.set()
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f.read_text(errors="replace")[-3000:] for f in self.tmp.glob("*.log"))


class MonitorRun(Processes):
    def start(self, name: str = "run") -> subprocess.Popen[bytes]:
        return self.spawn([sys.executable, "-m", "monitor", "run"], name)


class Workers(Processes):
    def start(
        self, beat: bool, name: str, level: str = "info", concurrency: int = 2
    ) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "celery", "-A", "monitor.worker", "worker", "-l", level,
               "-c", str(concurrency), "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]  # fmt: skip
        if beat:
            cmd += ["--beat", "-s", str(self.tmp / f"beat-{name}")]
        return self.spawn(cmd, name)


def wait_for(
    cond: Callable[[], bool], timeout: float, what: str, logs: Callable[[], str] = lambda: ""
) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{logs()[-4000:]}")
