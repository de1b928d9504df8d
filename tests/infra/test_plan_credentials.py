"""``make plan`` on a machine without Google credentials: one line saying so, exit 2.

Run as a subprocess with an environment that holds no credentials (an empty gcloud folder, no
``GOOGLE_APPLICATION_CREDENTIALS``, the metadata-server probe off), as a new user's laptop is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infra import spec

ROOT = Path(__file__).resolve().parents[2]


def _run_plan(tmp_path: Path) -> subprocess.CompletedProcess[str]:
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
