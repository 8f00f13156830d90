"""The real `mountdns-sync` as a child process, for process-level tests and benchmarks.

Like the servers in tests/servers.py it logs into a file in its work directory (at
debug level by default, so a failing test can show what the daemon did), is stopped
with SIGTERM (SIGKILL if it hangs) and can be run in the foreground for `--once`.
Importable without pytest.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from mountdns.testing.servers import VENV_BIN, Process, wait_until

ZONE = "domain.foo.bar"


class SyncProcess(Process):
    """mountdns-sync against a kubeconfig (a KubeAPIDouble) or a manifest directory."""

    def __init__(self, workdir: Path, redis_url: str, *, kubeconfig: str | None = None,
                 manifests: str | None = None, zone: str = ZONE, resync_interval: float = 30.0,
                 coalesce_seconds: float = 0.02, log_level: str = "debug",
                 extra_args: tuple[str, ...] = (), name: str = "sync", metrics_bind: str = "off"):
        super().__init__(name, workdir)
        if (kubeconfig is None) == (manifests is None):
            raise ValueError("give exactly one of kubeconfig and manifests")
        self.redis_url = redis_url
        self.kubeconfig = kubeconfig
        self.manifests = manifests
        self.zone = zone
        self.resync_interval = resync_interval
        self.coalesce_seconds = coalesce_seconds
        self.log_level = log_level
        self.extra_args = tuple(extra_args)
        # Off unless asked for: processes running side by side would all want 127.0.0.1:9153.
        self.metrics_bind = metrics_bind

    def argv(self, *more: str) -> list[str]:
        argv = [str(VENV_BIN / "mountdns-sync"), "--zone", self.zone, "--redis-url", self.redis_url,
                "--resync-interval", str(self.resync_interval),
                "--coalesce-seconds", str(self.coalesce_seconds), "--log-level", self.log_level,
                "--metrics-bind", self.metrics_bind]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.manifests:
            argv += ["--manifests", self.manifests]
        return argv + list(self.extra_args) + list(more)

    def start(self, *more: str) -> "SyncProcess":
        """Start the daemon in the background (it keeps running until stop())."""
        self.spawn(self.argv(*more))
        return self

    def run(self, *more: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
        """Run in the foreground (`--once`): stdout is returned, stderr goes to the log."""
        with open(self.log_path, "ab") as log:
            return subprocess.run(self.argv(*more), stdout=subprocess.PIPE, stderr=log, text=True,
                                  cwd=self.workdir, timeout=timeout)

    def send_signal(self, sig: int) -> None:
        """Signal the daemon (SIGKILL, SIGTERM, SIGSTOP, SIGCONT ...) without waiting for it."""
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no Lease release; reaped so it does not linger."""
        self.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_count(self, text: str) -> int:
        return self.log_text().count(text)

    def exited(self) -> bool:
        """Started, and no longer running."""
        return self.proc is not None and self.proc.poll() is not None

    def wait_for_log(self, text: str, timeout: float, count: int = 1) -> None:
        """Wait until `text` appears `count` times in the log."""
        self.wait_until(lambda: self.log_count(text) >= count, timeout, f"{text!r} x{count} in the sync log")

    def wait_until(self, check, timeout: float, what: str, interval: float = 0.05):
        """Like tests.servers.wait_until, but gives up at once if the daemon exits, and puts
        its log tail in the error."""
        def exited():
            return f"mountdns-sync exited ({self.proc.returncode})" if self.exited() else None
        try:
            return wait_until(check, timeout, what, interval, give_up=exited)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- sync log ---\n{self.log_tail(40)}") from None
