"""The local runtime's key, created once however many threads ask for it at the same time (the
server's first poll and its first request did, and one of them read a half-written file)."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from shared.adapters.local_identity import KEY_FILE_NAME, load_or_create_local_key


def test_threads_racing_to_create_the_key_all_get_the_one_written(tmp_path: Path) -> None:
    folder = tmp_path / "var"
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: load_or_create_local_key(folder), range(8)))
    assert len({key.issuer for key in keys}) == 1
    assert load_or_create_local_key(folder).issuer == keys[0].issuer
    assert [p.name for p in folder.iterdir()] == [KEY_FILE_NAME]  # no draft left behind
    assert stat.S_IMODE((folder / KEY_FILE_NAME).stat().st_mode) == 0o600
