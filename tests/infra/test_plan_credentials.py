"""``make plan`` without usable Google credentials: one line saying so and how to fix it, exit 2.

Run as a subprocess with an environment that holds no credentials (an empty gcloud folder, no
``GOOGLE_APPLICATION_CREDENTIALS``, the metadata-server probe off), as a new user's laptop is;
then with a key file whose token endpoint (a loopback stand-in) refuses the grant, and one whose
endpoint cannot be reached.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from infra import spec

ROOT = Path(__file__).resolve().parents[2]


def _run_plan(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GOOGLE_", "CLOUDSDK_", "GCE_", "CRM_"))
    }
    env.update(
        {
            "HOME": str(tmp_path),
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
            "NO_GCE_CHECK": "True",
            "GCE_METADATA_HOST": "127.0.0.1:9",
            "GCE_METADATA_IP": "127.0.0.1:9",
            **extra,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "infra", "plan", "--site", str(spec.EXAMPLE_SITE_FILE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plan_without_credentials_says_so_in_one_line(tmp_path: Path) -> None:
    result = _run_plan(tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: no Google credentials")
    assert "gcloud auth application-default login" in result.stderr
    assert "make deploy-demo" in result.stderr


def _key_file(tmp_path: Path, token_uri: str) -> Path:
    """A service-account key file whose token endpoint is ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path / "key.json"
    info = {
        "type": "service_account",
        "project_id": "crm-example",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "deployer@crm-example.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


@contextlib.contextmanager
def _refusing_token_endpoint() -> Iterator[str]:
    """A loopback token endpoint answering every grant as Google does a revoked one."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}'
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/token"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _assert_one_line(result: subprocess.CompletedProcess[str], start: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(start)
    assert "PRIVATE KEY" not in result.stderr


def test_plan_with_refused_credentials_says_so_in_one_line(tmp_path: Path) -> None:
    with _refusing_token_endpoint() as token_uri:
        key_file = _key_file(tmp_path, token_uri)
        result = _run_plan(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(key_file))

    _assert_one_line(result, "error: Google credentials could not be used (RefreshError: ")
    assert "invalid_grant" in result.stderr
    assert "gcloud auth application-default login" in result.stderr


def test_plan_when_the_token_endpoint_is_unreachable_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    with socket.socket() as closed:  # a port nothing listens on once closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    key_file = _key_file(tmp_path, f"http://127.0.0.1:{port}/token")

    result = _run_plan(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(key_file))

    _assert_one_line(result, "error: Google's token endpoint could not be reached")
    assert "check the network" in result.stderr
