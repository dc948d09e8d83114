"""glyph_clips: what it generates, that its classes need the order of frames (a frame-averaging learner cannot
separate a class from its time reversal, an ordered alignment can), and its cache."""

from __future__ import annotations

import torch

from metalearn.algorithms.otam import OTAM
from metalearn.algorithms.protonet import ProtoNet
from metalearn.data.glyph_clips import generate_glyph_clips, load_glyph_clips
from metalearn.episode import EpisodeBatch


class Pixels(torch.nn.Module):
    """Frame features = the frame's pixels: clips [N, T, 1, H, W] -> [N, T, H * W]; no learning involved."""

    def __init__(self, frames: int, size: int) -> None:
        super().__init__()
        self.frames, self.out_features = frames, size * size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(-3)


def test_clips_classes_and_names():
    store = generate_glyph_clips(12, 3, 5, 16, seed=0, jitter=0.06, motions_per_glyph=6)
    assert store.images.shape == (36, 5, 1, 16, 16) and store.images.dtype == torch.uint8
    assert store.class_offsets.tolist() == list(range(0, 37, 3))
    # two glyphs, each with all three motions both ways
    assert [n.split("-")[0] for n in store.class_names] == ["glyph00000"] * 6 + ["glyph00001"] * 6
    for g in (0, 6):
        names = store.class_names[g : g + 6]
        assert sorted(n.split("-")[1] for n in names) == ["rotate"] * 2 + ["scale"] * 2 + ["translate"] * 2
        assert [n.split("-")[2] for n in names] == ["forward", "backward"] * 3
    again = generate_glyph_clips(12, 3, 5, 16, seed=0, jitter=0.06, motions_per_glyph=6)
    assert torch.equal(store.images, again.images)
    assert bool((store.images[:, 0] != store.images[:, -1]).any(dim=(1, 2, 3)).all())  # every clip moves


def test_a_frame_average_is_blind_to_time_reversal():
    clips = generate_glyph_clips(2, 4, 8, 28, seed=1, jitter=0.06, motions_per_glyph=2).images.float() / 255
    learner = ProtoNet(Pixels(8, 28), "classification", 2).eval()
    support = torch.stack([clips[0], clips[0].flip(0)])[None]  # a clip, and the same clip played backwards
    logits = learner.predict_batch(EpisodeBatch(support, torch.tensor([[0, 1]]), clips[None], torch.zeros(1, 8).long()))
    assert torch.allclose(logits[..., 0], logits[..., 1], atol=1e-4)  # every query equally far from both


def _pair_accuracy(learner, clips: torch.Tensor, pair: int, shots: int = 5) -> float:
    """2-way accuracy on the clips of classes 2 * pair (a motion) and 2 * pair + 1 (its reversal), 20 clips each."""
    a, b = clips[40 * pair : 40 * pair + 20], clips[40 * pair + 20 : 40 * pair + 40]
    labels = torch.tensor([0] * shots + [1] * shots)[None]
    query_y = torch.tensor([0] * (20 - shots) + [1] * (20 - shots))[None]
    batch = EpisodeBatch(
        torch.cat([a[:shots], b[:shots]])[None], labels, torch.cat([a[shots:], b[shots:]])[None], query_y
    )
    with torch.no_grad():
        return float((learner.predict_batch(batch).argmax(-1) == query_y).float().mean())


def test_classes_that_differ_only_in_the_direction_of_time_need_the_order_of_frames():
    # 4 glyphs x 3 motions, each both ways; frame features are raw pixels, so nothing is learned: what separates a
    # motion from its reversal is the learner's use of time alone
    clips = generate_glyph_clips(24, 20, 8, 28, seed=3, jitter=0.06).images.float() / 255
    averaging = ProtoNet(Pixels(8, 28), "classification", 2).eval()
    aligning = OTAM(Pixels(8, 28), "classification", 2).eval()
    averaged = [_pair_accuracy(averaging, clips, p) for p in range(12)]
    aligned = [_pair_accuracy(aligning, clips, p) for p in range(12)]
    assert 0.35 < sum(averaged) / 12 < 0.65  # chance: 0.5
    assert sum(aligned) / 12 > 0.9 and min(aligned) > 0.7


def test_splits_keep_a_glyph_classes_together_and_are_cached(tmp_path):
    data = load_glyph_clips(
        12, 6, 6, motions_per_glyph=6, clips_per_class=2, frames=4, image_size=16, cache_dir=str(tmp_path)
    )
    assert (data.train.num_classes, data.val.num_classes, data.test.num_classes) == (12, 6, 6)
    glyphs = [{n.split("-")[0] for n in split.class_names} for split in (data.train, data.val, data.test)]
    assert [len(g) for g in glyphs] == [2, 1, 1] and not (glyphs[0] & glyphs[1] or glyphs[1] & glyphs[2])
    assert data.input_shape == (4, 1, 16, 16) and data.frames == 4
    assert len(list(tmp_path.glob("glyph_clips-*.pt"))) == 1
    again = load_glyph_clips(
        12, 6, 6, motions_per_glyph=6, clips_per_class=2, frames=4, image_size=16, cache_dir=str(tmp_path)
    )
    assert torch.equal(again.test.images, data.test.images)
