"""Every bad input ends in one `Error: ...` line and a non-zero exit, never a traceback.

Most cases run the real CLI entry point (metalearn.cli.main: Hydra, our handlers) inside this process,
which is fast; a few run it in a subprocess, including HYDRA_FULL_ERROR=1, which shows the traceback.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.support import TINY, main_status, run_cli

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")

# (overrides, a fragment of the one-line message)
BAD_CONFIG = [
    (["sampler.n_way=1"], "sampler.n_way=1 is invalid: must be at least 2"),
    (["sampler.k_shot=0"], "sampler.k_shot=0 is invalid: must be at least 1"),
    (["sampler.eval_batch_size=0"], "sampler.eval_batch_size=0 is invalid"),
    (["sampler.n_way=50"], "sampler.n_way=50 is too large"),
    (["sampler.k_shot=10", "sampler.q_query=15"], "sampler.k_shot + sampler.q_query = 10 + 15 is too large"),
    (["sampler.n_way=five"], "sampler.n_way='five' is invalid: expected int"),
    (["trainer.lr=-1"], "trainer.lr=-1.0 is invalid: must be greater than 0"),
    (["trainer.lr=abc"], "trainer.lr='abc' is invalid: expected float"),
    (["trainer.iterations=-5"], "trainer.iterations=-5 is invalid"),
    (["trainer.optimizer=rmsprop"], "trainer.optimizer='rmsprop' is invalid: must be one of adam, sgd"),
    (["trainer.scheduler=linear"], "trainer.scheduler='linear' is invalid"),
    (["trainer.momentum=0.9"], "trainer.momentum and trainer.nesterov apply to trainer.optimizer=sgd only"),
    (["trainer.optimizer=sgd", "trainer.nesterov=true"], "trainer.nesterov=true needs trainer.momentum above 0"),
    (["trainer.lr_gamma=0"], "trainer.lr_gamma=0.0 is invalid: must be greater than 0"),
    (["sampler.train_n_way=50"], "sampler.train_n_way=50 is too large: the train split of glyphs"),
    (["sampler.train_k_shot=10", "sampler.q_query=15"], "sampler.train_k_shot + sampler.train_q_query = 10 + 15"),
    (["algorithm=maml", "sampler.train_n_way=3"], "sampler.train_n_way=3 differs from sampler.n_way=5, but MAML"),
    (["algorithm=baseline", "sampler=episodic"], "algorithm=baseline pre-trains on mini-batches"),
    (["sampler=batches"], "sampler=batches draws mini-batches for supervised pre-training"),
    (["algorithm.distance=l1"], "algorithm.distance='l1' is invalid: must be one of euclidean, cosine"),
    (["algorithm=relationnet", "model=mlp"], "algorithm=relationnet compares feature maps"),
    (["model=resnet12", "model.widths=[8,8]"], "ResNet-12 has 4 blocks, give 4 widths"),
    (["trainer.grad_clip=0"], "trainer.grad_clip=0.0 is invalid: must be greater than 0"),
    (["trainer.val_interval=0"], "trainer.val_interval=0 is invalid"),
    (["trainer.weight_decay=-0.1"], "trainer.weight_decay=-0.1 is invalid"),
    (["trainer.resume=maybe"], "trainer.resume='maybe' is invalid: expected bool"),
    (["device.name=tpu"], "device.name='tpu' is invalid"),
    (["mode=predict"], "mode='predict' is invalid: must be one of train, eval"),
    (["mode=eval"], "mode=eval needs a checkpoint"),
    (["seed=abc"], "seed='abc' is invalid: expected int"),
    (["dataset.image_size=4"], "dataset.image_size=4 is invalid: must be at least 8"),
    (["dataset.train_classes=1"], "dataset.train_classes=1 is invalid"),
    (["dataset.jitter=-1"], "dataset.jitter=-1.0 is invalid"),
    (["model.num_blocks=9"], "model.num_blocks=9 is too many for 16x16 images"),
    (["dataset=sinusoid"], "model=conv4 needs images [C, H, W] or clips"),
    (["dataset=sinusoid", "model=mlp"], "does not support regression data"),
    (["algorithm=maml", "algorithm.inner_steps=0"], "algorithm.inner_steps=0 is invalid"),
    (["trainer.foo=1"], "trainer.foo is not a known key"),
    (["+trainer.foo=1"], "trainer.foo is not a known key"),
    (["+foo=1"], "foo is not a known key"),
    (["algorithm=foo"], "algorithm=foo is not an option of algorithm; choose one of: "),
    (["-m", "algorithm=foo,maml"], "algorithm=foo is not an option of algorithm; choose one of: "),
    (["+experiment=maml_sinusoid"], "experiment is chosen in the defaults list already: write experiment=maml_"),
    (["experiment=nonesuch"], "experiment=nonesuch is not an option of experiment"),
    (["sampler.n_way=[1,2"], "cannot parse the override 'sampler.n_way=[1,2'"),
    # a value the shell split at a space, or with characters the override grammar takes only when quoted
    (["dataset.name=my", "data"], "'data' is part of the value before it, quote the whole value"),
    (["dataset.name=données"], """quote the value, as in 'dataset.name="données"'"""),
    (["dataset.name=a#b"], """quote the value, as in 'dataset.name="a#b"'"""),
    (["mode=eval", "checkpoint=/nonexistent/best.pt"], "checkpoint /nonexistent/best.pt does not exist"),
    (["resume=/nonexistent/run"], "resume=/nonexistent/run: no such file or directory"),
    (["dataset=folder"], "needs dataset.root=PATH"),
    (["dataset=folder", "dataset.root=/nonexistent/images"], "is not a folder"),
    pytest.param(["device=cuda"], "device=cuda was asked for, but torch sees no CUDA GPU", marks=NO_CUDA),
]


def call_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", ["metalearn", *args])
    return main_status(), capsys.readouterr().err


def assert_one_clean_line(code: int, err: str, fragment: str, listing: bool = False) -> None:
    """One `Error:` line; with `listing`, one message whose further lines are an indented list and a fix."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("Error: ") and (len(lines) == 1 or listing), err
    assert not any(line.startswith(("Error", "Traceback")) for line in lines[1:]), err
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("overrides, fragment", BAD_CONFIG, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_config_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, overrides: list[str], fragment: str
) -> None:
    switched = {o.split("=")[0] for o in overrides if "." not in o.split("=")[0]}  # groups this case switches
    base = [o for o in TINY if o.split(".")[0] not in switched]
    flags = [o for o in overrides if o.startswith("-")]  # options go before the overrides
    overrides = [o for o in overrides if not o.startswith("-")]
    code, err = call_cli(monkeypatch, capsys, *flags, *base, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clean_line(code, err, fragment)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def _image_folder(root: Path) -> Path:
    for c in range(5):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(4):
            Image.new("L", (10, 10), color=40 * c + i).save(root / f"class{c}" / f"img{i}.png")
    return root


def test_bad_data_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    folder = _image_folder(tmp_path / "images")
    bad = folder / "class2" / "img1.png"
    bad.write_bytes(bad.read_bytes()[:30])  # a corrupt (truncated) image
    common = [
        "dataset=folder",
        f"dataset.root={folder}",
        "dataset.image_size=8",
        "sampler.n_way=2",
        "sampler.k_shot=1",
        "sampler.q_query=1",
        "trainer.progress=false",
        "device=cpu",
        f"dataset.cache_dir={tmp_path / 'cache'}",
    ]
    code, err = call_cli(monkeypatch, capsys, *common, f"hydra.run.dir={tmp_path / 'a'}")
    assert_one_clean_line(code, err, "class2/img1.png")

    omniglot = tmp_path / "omniglot"
    omniglot.mkdir()
    code, err = call_cli(
        monkeypatch, capsys, "dataset=omniglot", f"dataset.root={omniglot}", f"hydra.run.dir={tmp_path / 'b'}"
    )
    assert_one_clean_line(code, err, "Omniglot not found: no images_background or images_evaluation", listing=True)
    assert "dataset.download=true" in err.splitlines()[0] and f"  {omniglot / 'omniglot-py'}" in err  # fix; where
    (omniglot / "images_background.zip").write_bytes(b"PK\x03\x04" + b"\0" * 100)  # a truncated zip
    (omniglot / "images_evaluation.zip").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    code, err = call_cli(
        monkeypatch, capsys, "dataset=omniglot", f"dataset.root={omniglot}", f"hydra.run.dir={tmp_path / 'c'}"
    )
    assert_one_clean_line(code, err, "images_")


def test_unwritable_output_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, err = call_cli(monkeypatch, capsys, *TINY, f"hydra.run.dir={blocker}/run")
    assert_one_clean_line(code, err, f"cannot write to the output directory {blocker}/run: Not a directory")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["seed=1", "-m", "seed=2,3"], "put the options before the overrides, as in: metalearn -m seed=1 seed=2,3"),
        (["seed=1", "--cfg", "job", "seed=2"], "as in: metalearn --cfg=job seed=1 seed=2"),
        (["-x", "seed=1"], "unknown option -x: metalearn --help lists the options"),
        (["--seed=1"], "unknown option --seed: metalearn --help lists the options (an override is KEY=VALUE"),
        (["-m", "--cfg", "job"], "-m and --cfg cannot be combined"),
    ],
)
def test_misplaced_and_unknown_options_are_one_line(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Instead of Hydra's usage text (or, for two modes, its ValueError traceback)."""
    code, err = call_cli(monkeypatch, capsys, *argv)
    assert_one_clean_line(code, err, message)


def test_a_run_directory_hydra_cannot_write_into_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Hydra writes .hydra/ and metalearn.log as the job starts: a folder where the log goes, or a file where its
    folder goes, is one line naming the path (not Hydra's "Unable to configure handler 'file'" trace)."""
    (tmp_path / "a" / "metalearn.log").mkdir(parents=True)
    code, err = call_cli(monkeypatch, capsys, *TINY, f"hydra.run.dir={tmp_path / 'a'}")
    assert_one_clean_line(code, err, f"cannot write {tmp_path / 'a' / 'metalearn.log'}: Is a directory")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["metalearn.log"]  # no .hydra/, no claim left
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / ".hydra").write_text("")
    code, err = call_cli(monkeypatch, capsys, *TINY, f"hydra.run.dir={tmp_path / 'b'}")
    assert_one_clean_line(code, err, f"cannot write {tmp_path / 'b' / '.hydra'}: Not a directory")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [".hydra"]


def test_a_read_only_run_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """An existing run directory without write permission. The superuser may write anyway (and then the run
    proceeds, rightly), so os.access is made to answer as it does for everyone else."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == folder else real(path, mode))
    try:
        code, err = call_cli(monkeypatch, capsys, *TINY, f"hydra.run.dir={folder}")
    finally:
        folder.chmod(0o755)
    assert_one_clean_line(code, err, f"cannot write to the output directory {folder}: Permission denied")
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(not hasattr(signal, "SIGPIPE"), reason="no SIGPIPE on this platform")
def test_a_reader_that_goes_away_is_no_traceback(tmp_path: Path) -> None:
    """`metalearn --help | head -1`, `metalearn ... | head -1`: stdout is a pipe whose reader has gone. A command
    that only prints ends as Unix filters do (SIGPIPE); a run finishes and keeps its results."""
    read, write = os.pipe()
    os.close(read)
    try:
        printed = run_cli("--help", stdout=write)
        ran = run_cli(*TINY, "trainer.iterations=1", f"hydra.run.dir={tmp_path / 'run'}", stdout=write)
    finally:
        os.close(write)
    assert printed.returncode == -signal.SIGPIPE and printed.stderr == ""
    assert ran.returncode == 0 and "Traceback" not in ran.stderr and "Error" not in ran.stderr
    assert (tmp_path / "run" / "results.json").is_file()


@pytest.mark.slow
def test_subprocess_errors_and_hydra_full_error(tmp_path: Path) -> None:
    done = run_cli(*TINY, "sampler.n_way=1", f"hydra.run.dir={tmp_path / 'a'}")
    assert done.returncode == 2 and done.stderr.strip() == "Error: sampler.n_way=1 is invalid: must be at least 2"
    done = run_cli(*TINY, "sampler.n_way=1", f"hydra.run.dir={tmp_path / 'b'}", env={"HYDRA_FULL_ERROR": "1"})
    assert done.returncode != 0 and "Traceback" in done.stderr and "ConfigError" in done.stderr
