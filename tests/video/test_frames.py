"""The frame sampler: T segments of the stored frames, one frame each (random in training, centre in evaluation),
against hand computations, and the episode sampler showing clips through it."""

from __future__ import annotations

import torch

from metalearn.data.class_store import ClassStore, SplitData
from metalearn.data.frames import frame_indices, frame_rows, segment_starts
from metalearn.sampling.sampler import EpisodeSampler


def test_segments_of_ten_stored_frames_into_four():
    # bounds 0, 2.5, 5, 7.5, 10 rounded down: segments [0, 2), [2, 5), [5, 7), [7, 10)
    starts, lengths = segment_starts(10, 4)
    assert starts.tolist() == [0, 2, 5, 7] and lengths.tolist() == [2, 3, 2, 3]
    # evaluation: the frame under each midpoint, floor(1.25), floor(3.75), floor(6.25), floor(8.75)
    assert frame_indices(10, 4, 3, train=False).tolist() == [[1, 3, 6, 8]] * 3


def test_training_draws_each_frame_of_each_segment_and_no_other():
    gen = torch.Generator().manual_seed(0)
    idx = frame_indices(10, 4, 4000, train=True, gen=gen)
    for k, allowed in enumerate([{0, 1}, {2, 3, 4}, {5, 6}, {7, 8, 9}]):
        assert set(idx[:, k].tolist()) == allowed
    again = frame_indices(10, 4, 4000, train=True, gen=torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)


def test_fewer_stored_frames_than_shown_repeat_evenly():
    assert segment_starts(3, 6)[0].tolist() == [0, 0, 1, 1, 2, 2]
    assert frame_indices(3, 6, 1, train=False).tolist() == [[0, 0, 1, 1, 2, 2]]
    gen = torch.Generator().manual_seed(1)
    assert frame_indices(3, 6, 5, train=True, gen=gen).tolist() == [[0, 0, 1, 1, 2, 2]] * 5


def _numbered_clips(n: int, stored: int) -> torch.Tensor:
    """uint8 clips [n, stored, 1, 2, 2] whose frame f of clip i is filled with 10 * i + f."""
    values = 10 * torch.arange(n)[:, None] + torch.arange(stored)[None]
    return values[:, :, None, None, None].expand(n, stored, 1, 2, 2).to(torch.uint8).clone()


def test_frame_rows_index_the_shown_frames_of_every_clip():
    table = _numbered_clips(6, 10).view(60, -1)  # one row per stored frame: clip c's frame f is row 10 c + f
    rows = frame_rows(torch.tensor([[0, 1, 2], [3, 4, 5]]), 10, 4, train=False)
    assert rows.shape == (2, 3, 4)
    assert table[rows[1, 2], 0].tolist() == [50 + f for f in (1, 3, 6, 8)]
    # every stored frame shown: each clip's own rows, in order
    assert frame_rows(torch.tensor([2]), 10, 10, train=True, gen=torch.Generator()).tolist() == [list(range(20, 30))]


def test_the_sampler_shows_segment_centres_in_evaluation_and_segment_draws_in_training():
    store = ClassStore(_numbered_clips(20, 10), torch.arange(0, 21, 4), [f"c{i}" for i in range(5)])
    data = SplitData(store, store, store, name="numbered", frames=4)
    assert data.input_shape == (4, 1, 2, 2)
    sampler = EpisodeSampler(data, n_way=2, k_shot=1, q_query=1, val_episodes=6, test_episodes=6)
    for batch in sampler.eval_batches("test"):
        frames = torch.round(torch.cat([batch.support_x, batch.query_x], 1)[..., 0, 0, 0] * 255).long() % 10
        assert frames.shape[-1] == 4 and bool((frames == torch.tensor([1, 3, 6, 8])).all())
    seen = set()
    for _ in range(20):
        batch = sampler.train_batch()
        frames = torch.round(batch.support_x[..., 0, 0, 0] * 255).long() % 10  # [B, S, 4]
        seen |= set(map(tuple, frames.reshape(-1, 4).tolist()))
    assert all(f[0] in (0, 1) and f[1] in (2, 3, 4) and f[2] in (5, 6) and f[3] in (7, 8, 9) for f in seen)
    assert len(seen) > 5  # different clips draw different frames
