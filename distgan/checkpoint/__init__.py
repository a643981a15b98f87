"""distgan's files on disk: the checkpoint folder (``format.py``) and a generator's weights out of
a checkpoint or an exported file (``weights.py``). Imports nothing from training, so inference and
export can read checkpoints without Accelerate or DeepSpeed (only ZeRO consolidation needs DeepSpeed)."""
