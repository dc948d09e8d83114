"""Meta-training loop, evaluation protocol and checkpoints."""
