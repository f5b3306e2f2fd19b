"""Real git repositories for tests: a bare repository with a working clone to commit
(signed or not) and push from, signing keys, and servers for the git:// and http://
transports on 127.0.0.1. Reusable by any test (watch mode polls a served repository).

Its pytest fixtures live in ``tests/gitfixtures.py`` (a plugin every test folder gets).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

IDENTITY = {
    "GIT_AUTHOR_NAME": "Alice Example",
    "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "Alice Example",
    "GIT_COMMITTER_EMAIL": "alice@example.com",
}


def git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run git (test side); fails the test with git's message on error."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **IDENTITY, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def need(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (.ci/run installs it)")


@dataclass
class GpgKey:
    home: Path
    fingerprint: str
    public: Path
    """Armored public key file, for --trusted-keys."""


@dataclass
class SshKey:
    private: Path
    allowed_signers: Path
    """A one-line allowedSignersFile trusting this key, for --allowed-signers."""


def make_gpg_key(where: Path, email: str = "alice@example.com") -> GpgKey:
    need("gpg")
    where.mkdir(parents=True, exist_ok=True)
    # a short home: gpg-agent's socket path must stay under the 108-byte limit
    home = Path(tempfile.mkdtemp(prefix="rs-gpg-"))
    base = ["gpg", "--batch", "--homedir", str(home)]
    subprocess.run(
        [
            *base,
            "--passphrase",
            "",
            "--quick-gen-key",
            f"Signer <{email}>",
            "ed25519",
            "sign",
            "never",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    listing = subprocess.run(
        [*base, "--with-colons", "--list-secret-keys"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    public = where / f"{email.split('@')[0]}.asc"
    exported = subprocess.run(
        [*base, "--armor", "--export", fingerprint], check=True, capture_output=True, timeout=60
    ).stdout
    public.write_bytes(exported)
    return GpgKey(home=home, fingerprint=fingerprint, public=public)


def stop_gpg(key: GpgKey) -> None:
    if shutil.which("gpgconf"):
        subprocess.run(
            ["gpgconf", "--homedir", str(key.home), "--kill", "all"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    shutil.rmtree(key.home, ignore_errors=True)


def make_ssh_key(where: Path, email: str = "alice@example.com") -> SshKey:
    need("ssh-keygen")
    where.mkdir(parents=True, exist_ok=True)
    private = where / f"ssh-{email.split('@')[0]}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", email, "-f", str(private)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    public = private.with_name(private.name + ".pub").read_text().strip()
    signers = where / f"allowed-signers-{email.split('@')[0]}"
    signers.write_text(f'{email} namespaces="git" {public}\n')
    return SshKey(private=private, allowed_signers=signers)


@dataclass
class Repo:
    """A bare repository (``bare``, served) and a working clone (``work``) to commit in."""

    bare: Path
    work: Path
    branch: str = "main"
    _clock: list[int] = field(default_factory=lambda: [1_700_000_000])

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def commit(
        self,
        files: Mapping[str, str | None],
        message: str = "change",
        *,
        sign: GpgKey | SshKey | None = None,
    ) -> str:
        """Write (or with None, delete) files, commit them (signed with ``sign``) and
        return the new commit's SHA. Nothing is pushed."""
        for rel, content in files.items():
            path = self.work / rel
            if content is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        git("add", "-A", cwd=self.work)
        self._clock[0] += 60
        stamp = f"{self._clock[0]} +0000"
        env = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        args = ["commit", "--quiet", "--allow-empty", "-m", message]
        if isinstance(sign, GpgKey):
            env["GNUPGHOME"] = str(sign.home)
            args = [
                "-c",
                f"user.signingkey={sign.fingerprint}",
                "-c",
                "gpg.format=openpgp",
                *args,
                "-S",
            ]
        elif isinstance(sign, SshKey):
            args = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={sign.private}", *args, "-S"]
        git(*args, cwd=self.work, env=env)
        return git("rev-parse", "HEAD", cwd=self.work)

    def push(self, *, force: bool = False, ref: str | None = None) -> None:
        git(
            "push",
            "--quiet",
            *(["--force"] if force else []),
            "origin",
            ref or self.branch,
            cwd=self.work,
        )

    def tag(self, name: str, *, annotated: bool = True) -> None:
        args = ["tag", "-a", name, "-m", name] if annotated else ["tag", name]
        git(*args, cwd=self.work)
        git("push", "--quiet", "origin", name, cwd=self.work)

    def reset(self, commit: str) -> None:
        git("reset", "--quiet", "--hard", commit, cwd=self.work)

    def head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.work)


def make_repo(root: Path, name: str = "repo") -> Repo:
    """An empty bare repository ``root/name.git`` (HEAD → main) and its clone."""
    need("git")
    bare = root / f"{name}.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = root / f"{name}-work"
    git("clone", "--quiet", str(bare), str(work))
    git("checkout", "--quiet", "-B", "main", cwd=work)
    return Repo(bare=bare, work=work)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def git_daemon(base: Path, *, port: int | None = None) -> Iterator[str]:
    """``git daemon`` exporting every repository below ``base``; yields ``git://…/``.
    ``port`` serves again where an earlier daemon served (a remote coming back)."""
    need("git")
    port = port or free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            "--informative-errors",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"git://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class _Backend(BaseHTTPRequestHandler):
    """Smart HTTP through ``git http-backend`` (CGI), behind HTTP basic auth."""

    root: Path
    auth: str | None

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        if self.auth is not None and self.headers.get("Authorization") != self.auth:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        if self.headers.get("Content-Encoding") == "gzip":
            env["HTTP_CONTENT_ENCODING"] = "gzip"
        out = subprocess.run(
            ["git", "http-backend"],
            input=body,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextlib.contextmanager
def git_http(base: Path, *, user: str | None = None, password: str | None = None) -> Iterator[str]:
    """Smart HTTP for every repository below ``base``; yields ``http://127.0.0.1:P/``.
    With ``user``/``password``, requests without those basic-auth credentials get 401."""
    import base64

    auth = None
    if user is not None and password is not None:
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    handler = type("Handler", (_Backend,), {"root": base, "auth": auth})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
