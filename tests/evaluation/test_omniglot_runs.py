"""The Omniglot one-shot runs reader and scorer, on hand-made run layouts written like the published ones."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from metalearn.algorithms.protonet import ProtoNet
from metalearn.config.groups.run import EvalConfig
from metalearn.data.class_store import ClassStore, SplitData
from metalearn.errors import CheckpointError, ConfigError, DataError
from metalearn.evaluation.omniglot_runs import evaluate_runs, read_runs, score_runs
from metalearn.models.conv4 import Conv4
from tests.support import TINY, run_cli


def _character(rng: np.random.Generator) -> np.ndarray:
    """A 105x105 black-on-white 'character': a few random thick strokes (rectangles)."""
    image = np.full((105, 105), 255, dtype=np.uint8)
    for _ in range(4):
        x, y = rng.integers(5, 80, size=2)
        w, h = rng.integers(4, 25, size=2)
        image[y : y + h, x : x + w] = 0
    return image


def make_runs(root: Path, n_runs: int = 2, wrong: tuple[int, ...] = (0, 0), seed: int = 0) -> Path:
    """runNN/{training,test}/*.png and class_labels.txt. Test item k is an exact copy of a training image;
    in run r the first wrong[r] label lines name another class, so a perfect learner makes wrong[r] errors."""
    rng = np.random.default_rng(seed)
    for r in range(n_runs):
        run = f"run{r + 1:02d}"
        (root / run / "training").mkdir(parents=True)
        (root / run / "test").mkdir()
        images = [_character(rng) for _ in range(20)]
        for c, image in enumerate(images):
            Image.fromarray(image).convert("1").save(root / run / "training" / f"class{c + 1:02d}.png")
        order = rng.permutation(20)
        lines = []
        for k, c in enumerate(order):
            Image.fromarray(images[c]).convert("1").save(root / run / "test" / f"item{k + 1:02d}.png")
            label = (c + 1) % 20 if k < wrong[r] else c
            lines.append(f"{run}/test/item{k + 1:02d}.png {run}/training/class{label + 1:02d}.png")
        (root / run / "class_labels.txt").write_text("\n".join(lines) + "\n")
    return root


def _zip_folder(folder: Path, dest: Path, prefix: str) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return dest


def _protonet() -> ProtoNet:
    torch.manual_seed(0)
    return ProtoNet(Conv4((1, 28, 28)), "classification", n_way=20)


def test_reader_decodes_layout_with_labels_and_polarity(tmp_path: Path) -> None:
    runs = read_runs(make_runs(tmp_path / "runs"), image_size=28)
    assert [r.name for r in runs] == ["run01", "run02"]
    for run in runs:
        assert run.training.shape == run.test.shape == (20, 1, 28, 28) and run.training.dtype == torch.uint8
        # every test item is a copy of the training image its label names
        assert torch.equal(run.test, run.training[run.labels])
        assert sorted(run.labels.tolist()) == list(range(20))
        # black ink on white in the PNGs -> bright ink on a dark background, like the training data
        assert run.training.float().mean() < 128 and run.training.max() == 255


def test_exact_copies_score_zero_and_known_mistakes_are_counted(tmp_path: Path) -> None:
    perfect = read_runs(make_runs(tmp_path / "a"), 28)
    assert score_runs(_protonet(), perfect, torch.device("cpu")) == [0, 0]
    flawed = read_runs(make_runs(tmp_path / "b", wrong=(3, 7)), 28)
    assert score_runs(_protonet(), flawed, torch.device("cpu")) == [3, 7]


@pytest.mark.parametrize("prefix", ["", "all_runs/"])
def test_all_runs_zip_reads_like_the_folder(tmp_path: Path, prefix: str) -> None:
    folder = make_runs(tmp_path / "runs", wrong=(1, 2))
    archive = _zip_folder(folder, tmp_path / "all_runs.zip", prefix)
    from_folder, from_zip = read_runs(folder, 28), read_runs(archive, 28)
    holder = tmp_path / "holder"
    holder.mkdir()
    archive.rename(holder / "all_runs.zip")
    from_holder = read_runs(holder, 28)  # a folder holding all_runs.zip
    for a, b, c in zip(from_folder, from_zip, from_holder):
        assert a.name == b.name == c.name
        assert torch.equal(a.training, b.training) and torch.equal(a.test, c.test) and torch.equal(a.labels, b.labels)


def test_bad_layouts_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no Omniglot one-shot runs found.*eval.runs_dir"):
        read_runs(tmp_path, 28)
    folder = make_runs(tmp_path / "runs", n_runs=1, wrong=(0,))
    labels = folder / "run01" / "class_labels.txt"
    labels.write_text(labels.read_text().replace("class01.png", "class99.png"))
    with pytest.raises(DataError, match=r"class_labels.txt line \d+"):
        read_runs(folder, 28)
    labels.write_text("")
    with pytest.raises(DataError, match="incomplete"):
        read_runs(folder, 28)


def test_protocol_needs_runs_dir() -> None:
    with pytest.raises(ConfigError, match="eval.runs_dir=DIR"):
        EvalConfig(protocol="omniglot_runs").check("eval")


def test_learner_with_a_5_way_head_is_refused(tmp_path: Path) -> None:
    from metalearn.algorithms.maml import MAML

    make_runs(tmp_path / "runs")
    store = ClassStore(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.tensor([0, 2, 4]), ["a", "b"])
    data = SplitData(store, store, store, "tiny")
    cfg = OmegaConf.create(
        {
            "eval": {"protocol": "omniglot_runs", "runs_dir": str(tmp_path / "runs")},
            "model": {"_target_": "metalearn.models.conv4.Conv4"},
            "algorithm": {"_target_": "metalearn.algorithms.maml.MAML"},
        }
    )
    state = MAML(Conv4((1, 28, 28)), "classification", n_way=5).state_dict()
    with pytest.raises(CheckpointError, match="sampler.n_way=20"):
        evaluate_runs(cfg, data, torch.device("cpu"), state, tmp_path / "x.pt")


def test_cli_scores_a_checkpoint_on_the_runs(tmp_path: Path) -> None:
    runs = make_runs(tmp_path / "runs", wrong=(2, 5))
    train = run_cli(*TINY, "trainer.iterations=2", f"hydra.run.dir={tmp_path / 'train'}")
    assert train.returncode == 0, train.stderr
    checkpoint = tmp_path / "train" / "checkpoints" / "best.pt"
    out = run_cli(
        "mode=eval",
        f"checkpoint={checkpoint}",
        "eval.protocol=omniglot_runs",
        f"eval.runs_dir={runs}",
        "device=cpu",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    # a 5-way-trained ProtoNet scores the 20-way runs; exact copies are found, so only the mislabelled items count
    assert results["protocol"] == "omniglot_runs" and results["trials"] == 40
    assert results["runs"] == {"run01": 2 / 20, "run02": 5 / 20}
    assert results["mean"] == pytest.approx(7 / 40) and results["errors"] == 7
    assert "omniglot one-shot runs: error 17.50% (7/40 trials" in out.stdout
