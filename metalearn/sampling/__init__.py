"""Episodes and the seeded sampler that draws them."""

from metalearn.episode import Episode, EpisodeBatch
from metalearn.sampling.sampler import EpisodeSampler

__all__ = ["Episode", "EpisodeBatch", "EpisodeSampler"]
