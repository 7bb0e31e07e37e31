"""A real `redis-server` for tests: loopback port, temp dir, no persistence.

`deploy/install-tools.sh` (run by `make test`) installs Debian's redis-server.
`RedisServer.stop()` and `.start()` let a test take the store away mid-run and bring
it back on the same port.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RedisServer", "redis_server"]

_READY = "Ready to accept connections"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    def __init__(
        self,
        directory: Path,
        *,
        password: str | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make deploy-tools`")
        self._binary = binary
        self._directory = directory
        self._password = password
        # (certificate, key): serve TLS only; the certificate is also the CA clients trust.
        self._tls = tls
        self.port = _free_port()
        self._process: subprocess.Popen[str] | None = None
        self._drain = threading.Thread()
        self.log: list[str] = []

    @property
    def url(self) -> str:
        auth = f":{self._password}@" if self._password else ""
        if self._tls is not None:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self._tls[0]}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        """Starts the server and returns once it accepts connections."""
        assert self._process is None, "already running"
        args = [
            self._binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self._directory), "--save", "", "--appendonly", "no",
            "--logfile", "", "--daemonize", "no",
        ]  # fmt: skip
        if self._password:
            args += ["--requirepass", self._password]
        if self._tls is not None:
            cert, key = (str(path) for path in self._tls)
            args += [
                "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert,
                "--tls-key-file", key, "--tls-ca-cert-file", cert, "--tls-auth-clients", "no",
            ]  # fmt: skip
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        ready = threading.Event()

        def drain() -> None:
            assert process.stdout is not None
            with process.stdout:
                for line in process.stdout:
                    self.log.append(line)
                    if _READY in line:
                        ready.set()
            ready.set()  # exited: wake the waiter, which sees the return code

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        if not ready.wait(timeout) or process.poll() is not None:
            process.kill()
            process.wait()
            self._drain.join()
            raise RuntimeError("redis-server did not start:\n" + "".join(self.log[-20:]))
        self._process = process

    def stop(self) -> None:
        """Kills the server at once (as a crash or a network cut would look)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._drain.join()
            self._process = None


@contextlib.contextmanager
def redis_server(
    directory: Path, *, password: str | None = None, tls: tuple[Path, Path] | None = None
) -> Iterator[RedisServer]:
    server = RedisServer(directory, password=password, tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
