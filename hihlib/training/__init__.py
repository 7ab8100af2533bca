"""Training: the Trainer (single process or torchrun DDP) and its distributed helpers."""
