"""Video from the command line: glyph_clips with protonet, otam and trx end to end, and the one-line errors of
clip settings that cannot work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_bad_inputs import assert_one_clean_line, call_cli
from tests.video.fixtures import video_dataset

# A tiny clip preset: 2 + 1 + 1 glyphs of 6 motion classes, 4 frames of 16x16, an 8-channel Conv4.
CLIPS = [
    "dataset=glyph_clips",
    "dataset.train_classes=12",
    "dataset.val_classes=6",
    "dataset.test_classes=6",
    "dataset.clips_per_class=6",
    "dataset.frames=4",
    "dataset.image_size=16",
    "model.hidden_channels=8",
    "sampler.q_query=2",
    "sampler.val_episodes=4",
    "sampler.test_episodes=8",
    "trainer.iterations=4",
    "trainer.val_interval=2",
    "trainer.progress=false",
    "device=cpu",
]


def test_otam_trains_and_tests_on_clips_from_the_command_line(cli, tmp_path: Path) -> None:
    result = cli(*CLIPS, "algorithm=otam", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["algorithm"] == "otam" and results["dataset"] == "glyph_clips" and results["episodes"] == 8
    assert "test accuracy" in result.stdout and "(8 episodes, 5-way 1-shot)" in result.stdout
    assert 0 <= results["mean"] <= 1


@pytest.mark.parametrize("algorithm", ["protonet", "trx"])
def test_protonet_and_trx_on_clips(inprocess, tmp_path: Path, algorithm: str) -> None:
    extra = ["algorithm.dim=16"] if algorithm == "trx" else []
    results = inprocess(tmp_path, *CLIPS, f"algorithm={algorithm}", *extra)
    assert results["iterations"] == 4 and 0 <= results["mean"] <= 1
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows if "val_accuracy" in r] == [2, 4]


BAD_CLIPS = [
    (["algorithm=maml"], "algorithm MAML does not take video clips, and the data set gives clips of 4 frames"),
    (["algorithm=matchingnet"], "algorithm MatchingNet does not take video clips"),
    (["algorithm=otam", "model=mlp"], "algorithm OTAM compares the frames of video clips, and needs a clip data set"),
    (["dataset.train_classes=10"], "dataset.train_classes=10 is invalid: must be a multiple of"),
    (["dataset.motions_per_glyph=3"], "dataset.motions_per_glyph=3 is invalid: must be 2, 4 or 6"),
    (["dataset.frames=1"], "dataset.frames=1 is invalid: must be at least 2"),
    (["algorithm=trx", "algorithm.cardinalities=[2,5]"], "has tuples longer than the clips' 4 frames"),
    (["algorithm=trx", "algorithm.cardinalities=[2,2]"], "algorithm.cardinalities=[2, 2] is invalid"),
    (["algorithm=otam", "algorithm.smoothing=-1"], "algorithm.smoothing=-1.0 is invalid"),
]


@pytest.mark.parametrize("overrides, fragment", BAD_CLIPS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_clip_settings_are_one_line(tmp_path, monkeypatch, capsys, overrides, fragment) -> None:
    base = [o for o in CLIPS if not (o.startswith("model.") and "model=mlp" in overrides)]
    code, err = call_cli(monkeypatch, capsys, *base, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clean_line(code, err, fragment)


def test_clip_learners_refuse_images(monkeypatch, capsys, tiny, tmp_path) -> None:
    code, err = call_cli(monkeypatch, capsys, *tiny, "algorithm=otam", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clean_line(code, err, "algorithm OTAM compares the frames of video clips")


def test_trx_on_frame_folders_with_split_lists_and_clip_augmentation(inprocess, tmp_path: Path) -> None:
    splits = video_dataset(tmp_path / "data", videos_per_class=4, frames=10)
    overrides = [
        "dataset=video",
        f"dataset.root={tmp_path / 'data' / 'videos'}",
        f"dataset.splits={splits}",
        "dataset.image_size=16",
        "dataset.frames=4",
        "dataset.stored_frames=6",
        "dataset.augment=standard",
        "model.hidden_channels=8",
        "algorithm=trx",
        "algorithm.dim=16",
        "sampler.n_way=2",
        "sampler.q_query=2",
        "sampler.val_episodes=2",
        "sampler.test_episodes=4",
        "trainer.iterations=3",
        "trainer.val_interval=3",
        "trainer.progress=false",
        "device=cpu",
    ]
    results = inprocess(tmp_path / "run", *overrides)
    assert results["dataset"] == "video" and results["episodes"] == 4 and 0 <= results["mean"] <= 1


BAD_VIDEO = [
    (["dataset=video"], "dataset=video needs dataset.splits=FOLDER"),
    (["dataset=kinetics100", "dataset.splits=/tmp"], "dataset.splits=/tmp replaces the split lists of"),
    (["dataset=video", "dataset.benchmark=kinetics"], "dataset.benchmark='kinetics' is invalid: must be one of"),
    (["dataset=kinetics100"], "needs dataset.root=PATH"),
    (["dataset=kinetics100", "dataset.stored_frames=0"], "dataset.stored_frames=0 is invalid"),
]


@pytest.mark.parametrize("overrides, fragment", BAD_VIDEO, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_video_settings_are_one_line(tmp_path, monkeypatch, capsys, overrides, fragment) -> None:
    code, err = call_cli(monkeypatch, capsys, *overrides, "device=cpu", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clean_line(code, err, fragment)
