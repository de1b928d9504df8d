"""Where the handbook's mail corpus lives: beside the checkout, read-only (CI puts it there too)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_CORPUS = ROOT.parent / "shared" / "corpus"
