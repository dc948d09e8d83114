"""Evaluation protocols beyond the sampler's fixed episodes, such as the Omniglot one-shot runs."""
