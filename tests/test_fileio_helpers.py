"""The one atomic-write helper and the one overlap check (fileio), used by every writer."""

from __future__ import annotations

import pytest

from convbert_export.errors import InvalidInputError
from convbert_export.fileio import atomic_file, check_no_overlap, write_bytes_atomic


def test_atomic_file_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target) as out:
            out.write("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    with atomic_file(target) as out:
        out.write("new\n")
    write_bytes_atomic(tmp_path / "cache.bin", b"\x00\x01")
    assert target.read_text() == "new\n" and (tmp_path / "cache.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.bin", "out.jsonl"]


def test_one_overlap_check(tmp_path):
    source = tmp_path / "export"
    source.mkdir()
    with pytest.raises(InvalidInputError, match="inside the export directory, whose checksums"):
        check_no_overlap(source / "sub", source, "export directory")
    with pytest.raises(InvalidInputError, match="would replace the export directory it reads"):
        check_no_overlap(tmp_path, source, "export directory")
    with pytest.raises(InvalidInputError, match="overlaps the export directory"):
        check_no_overlap(source, source, "export directory")
    check_no_overlap(source, source, "export directory", allow_same=True)
    check_no_overlap(source / "sub", source, "checkpoint", inside=False)  # inside allowed
    check_no_overlap(tmp_path / "elsewhere", source, "export directory")
