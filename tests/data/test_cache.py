"""A cache file that loads but is wrong is never used: its content is checked against the checksum stored
with it, and a mismatch rebuilds the data with a one-line notice."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from metalearn.data.glyphs import load_glyphs


def cache_of(folder: Path) -> Path:
    (path,) = folder.glob("glyphs-*.pt")
    return path


@pytest.mark.parametrize("damage", ["zeroed images", "no checksum"])
def test_a_wrong_cache_file_is_rebuilt_with_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture, damage: str
) -> None:
    first = load_glyphs(train_classes=4, val_classes=2, test_classes=2, cache_dir=str(tmp_path))
    path = cache_of(tmp_path)
    blob = torch.load(path, weights_only=True)
    blob["images"] = torch.zeros_like(blob["images"])  # loads fine, and is wrong
    if damage == "no checksum":
        del blob["digest"]  # as written by an earlier version
    torch.save(blob, path)
    capsys.readouterr()
    again = load_glyphs(train_classes=4, val_classes=2, test_classes=2, cache_dir=str(tmp_path))
    assert torch.equal(again.split("train").images, first.split("train").images)
    notice = capsys.readouterr().err.strip()
    expected = "does not match its checksum" if damage == "zeroed images" else "was written without a checksum"
    assert notice == f"cached data file {path} {expected}; rebuilding it"
    assert torch.load(path, weights_only=True)["images"].any()  # the file itself was rebuilt
    load_glyphs(train_classes=4, val_classes=2, test_classes=2, cache_dir=str(tmp_path))
    assert capsys.readouterr().err == ""  # and is used as it is from then on
