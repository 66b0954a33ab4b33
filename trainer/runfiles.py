"""What a training run folder holds, by name (torch-free, so curves and scripts can find the files).

    checkpoint.pt   the last completed epoch (trainer.checkpoint layout); --resume continues from it
    best.pt         the epoch with the lowest validation ΔE00 so far
    metrics.jsonl   one JSON object per epoch (losses, validation scores, timing)
    samples/        epoch_NNNN.png grids: gray | truth | colorized
"""

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"
METRICS_NAME = "metrics.jsonl"
SAMPLES_DIR = "samples"
