"""The Omniglot one-shot classification runs (Lake, Salakhutdinov & Tenenbaum, Science 2015, and
github.com/brendenlake/omniglot, python/one-shot-classification).

Twenty runs of a 20-way within-alphabet task: each run has 20 training images (one per character,
`runNN/training/class01..20.png`) and 20 test images (`runNN/test/item01..20.png`); `class_labels.txt`
pairs each test image with its correct training image. A learner adapts on the 20 training images
as one 20-way 1-shot episode and classifies the 20 test images; the score is the error rate of each run
and over all 400 trials. Images are preprocessed exactly like the training data (inverted to bright
ink on dark, antialiased resize to the model's input size).

Published error rates on these runs: people 4.5%, Bayesian Program Learning 3.3%, a deep Siamese
convnet 8.0%, a deep convnet 13.5% (24.0% when trained on the minimal background set small1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from metalearn.algorithms.base import MetaLearner
from metalearn.data.omniglot import decode_ink, resize
from metalearn.data.omniglot_sources import FileSource, FolderSource, ZipSource
from metalearn.episode import Episode
from metalearn.errors import ConfigError, DataError
from metalearn.training.checkpoint import load_state_checked

WAYS = 20
_LABELS = "class_labels.txt"
_RUN = re.compile(r"run\d+")


@dataclass
class OneShotRun:
    """One run: support images labelled 0..19 in file-name order, test images and their correct labels."""

    name: str
    training: Tensor  # uint8 [20, 1, S, S]
    test: Tensor  # uint8 [20, 1, S, S]
    labels: Tensor  # long [20]


def open_runs(path: Path) -> tuple[FileSource, str]:
    """The runs' files (a folder of runNN/ folders, or all_runs.zip) and the name prefix in front of `runNN/`."""
    tried = [path, path / "all_runs.zip", path / "all_runs"]
    source: FileSource | None = None
    if path.is_file():
        source = ZipSource(path)
    elif (path / "all_runs.zip").is_file() and not any(p.is_dir() and _RUN.fullmatch(p.name) for p in path.iterdir()):
        source = ZipSource(path / "all_runs.zip")
    elif path.is_dir():
        source = FolderSource(path)
    if source is not None:
        prefixes = {
            n[: -len(f"{n.split('/')[-2]}/{_LABELS}")]
            for n in source.names()
            if n.endswith(f"/{_LABELS}") and len(n.split("/")) >= 2 and _RUN.fullmatch(n.split("/")[-2])
        }
        if len(prefixes) == 1:
            return source, prefixes.pop()
    raise DataError(
        f"no Omniglot one-shot runs found at {path}: looked for runNN/{_LABELS} in "
        f"{', '.join(str(p) for p in tried)}. Set eval.runs_dir=DIR to the folder holding run01..run20 or to "
        "all_runs.zip"
    )


def read_runs(path: str | Path, image_size: int) -> list[OneShotRun]:
    """Read and preprocess every run (sorted by name) at `image_size`."""
    source, prefix = open_runs(Path(path).expanduser())
    names = source.names()
    runs = sorted({n[len(prefix) :].split("/")[0] for n in names if n.startswith(prefix) and n.endswith(f"/{_LABELS}")})
    out = []
    for run in runs:
        training = sorted(
            n[len(prefix) :] for n in names if n.startswith(f"{prefix}{run}/training/") and n.endswith(".png")
        )
        test = sorted(n[len(prefix) :] for n in names if n.startswith(f"{prefix}{run}/test/") and n.endswith(".png"))
        labels_file = f"{prefix}{run}/{_LABELS}"
        truth: dict[str, str] = {}
        for number, line in enumerate(source.read(labels_file).decode("utf-8", "replace").splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[0] not in test or fields[1] not in training:
                raise DataError(
                    f"{source.where(labels_file)} line {number} is {line.strip()!r}: expected 'TEST TRAINING' "
                    "naming one of "
                    f"{len(test)} files in {run}/test/ and one of {len(training)} files in {run}/training/"
                )
            truth[fields[0]] = fields[1]
        if len(training) != WAYS or sorted(truth) != test:
            raise DataError(
                f"run {source.where(prefix + run)} is incomplete: it needs {WAYS} training images and a label "
                "line for each "
                f"test image; found {len(training)} training images, {len(test)} test images, {len(truth)} label lines"
            )
        decoded = resize(decode_ink(source.read, [prefix + n for n in training + test], source.where), image_size)
        labels = torch.tensor([training.index(truth[item]) for item in test])
        out.append(OneShotRun(run, decoded[:WAYS], decoded[WAYS:], labels))
    return out


def score_runs(learner: MetaLearner, runs: list[OneShotRun], device: torch.device) -> list[int]:
    """The number of wrongly classified test images of each run."""
    was_training = learner.training
    learner.eval()
    errors = []
    try:
        with torch.no_grad():
            for run in runs:
                episode = Episode(
                    run.training.float() / 255, torch.arange(WAYS), run.test.float() / 255, run.labels, n_way=WAYS
                ).to(device)
                predicted = learner.predict(episode).argmax(-1).cpu()
                errors.append(int((predicted != run.labels).sum()))
    finally:
        learner.train(was_training)
    return errors


def summarise(runs: list[OneShotRun], errors: list[int]) -> dict[str, Any]:
    """results.json fields: overall and per-run error rates, and the one console line."""
    trials = sum(len(run.labels) for run in runs)
    overall = sum(errors) / trials
    per_run = {run.name: errors[i] / len(run.labels) for i, run in enumerate(runs)}
    listing = ", ".join(f"{name} {100 * rate:.0f}%" for name, rate in per_run.items())
    return {
        "protocol": "omniglot_runs",
        "metric": "error_rate",
        "mean": overall,
        "errors": sum(errors),
        "trials": trials,
        "runs": per_run,
        "summary": f"omniglot one-shot runs: error {100 * overall:.2f}% ({sum(errors)}/{trials} trials, "
        f"{len(runs)} runs of {WAYS}-way 1-shot; people 4.5%, BPL 3.3%); per run: {listing}",
    }


def evaluate_runs(
    cfg: Any, data: Any, device: torch.device, state: dict[str, Tensor], checkpoint: Path
) -> dict[str, Any]:
    """Score the checkpoint's learner, rebuilt as a 20-way learner, on the runs at cfg.eval.runs_dir."""
    from metalearn.build import build

    channels, height, width = data.input_shape
    if channels != 1 or height != width:
        raise ConfigError(
            "eval.protocol=omniglot_runs needs a model of square grayscale images (such as dataset=omniglot or "
            f"glyphs); this checkpoint's data are {channels}x{height}x{width}"
        )
    runs = read_runs(cfg.eval.runs_dir, height)
    backbone = build(cfg.model, input_shape=data.input_shape)
    learner = build(cfg.algorithm, backbone=backbone, task=data.task, n_way=WAYS).to(device)
    load_state_checked(
        learner,
        state,
        checkpoint,
        hint=(
            f"; to score the {WAYS}-way one-shot runs, a learner with an output layer must be trained with "
            f"sampler.n_way={WAYS}; metric learners such as algorithm=protonet work with any n_way"
        ),
    )
    return summarise(runs, score_runs(learner, runs, device))
