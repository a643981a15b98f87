"""What TensorBoard's first screen shows: the losses and the validation, nothing that stays zero.

TensorBoard groups cards by a tag's first path segment, orders the groups by the tags' names
and opens only the first two groups (its Time Series dashboard; the rest are collapsed
headers). Logged under their own names, distgan's scalars opened on ``d/`` and eleven flat-zero
``data_skips/*`` cards, with ``g/mel`` and ``val/*`` below the fold. So the names written to
TensorBoard are chosen for that order, and only there (the logs, the progress bar and the code
keep the metric names, ``metric_name`` maps back):

- ``losses/d/real``, ..., ``losses/g/mel``: every loss term, one group (cards titled ``d/real``, ...);
- ``val/...``: validation scalars, audio and mel images, as before;
- ``vitals/...``: the rest (gradient norms, learning rates, throughput, memory, skip totals),
  a group that sorts after ``val`` and so starts collapsed.

Skip counters are running totals that are zero in a healthy run. Of them, TensorBoard gets
``data/skipped`` (all data skip reasons added) and ``skipped_updates/total`` always, and each
reason's own counter (``data_skips/<reason>``, ``skipped_updates/{g,d}``) from the first log at
which it is non-zero (a total never falls, so its curve then continues to the end).
"""

from __future__ import annotations

LOSS_GROUPS = ("d/", "g/")
LOSSES, VALIDATION, VITALS = "losses/", "val/", "vitals/"
DATA_SKIPS, REFILLED_KEY, UPDATE_SKIPS = "data_skips/", "data_skips/refilled", "skipped_updates/"
DATA_TOTAL, UPDATES_TOTAL = "data/skipped", "skipped_updates/total"


def tensorboard_tag(key: str) -> str:
    """The TensorBoard tag of metric ``key``."""
    if key.startswith(LOSS_GROUPS):
        return LOSSES + key
    if key.startswith(VALIDATION):
        return key
    return VITALS + key


def metric_name(tag: str) -> str:
    """The metric a TensorBoard tag shows (the inverse of ``tensorboard_tag``)."""
    for prefix in (LOSSES, VITALS):
        if tag.startswith(prefix):
            return tag[len(prefix):]
    return tag


def tensorboard_scalars(values: dict[str, float]) -> dict[str, float]:
    """The scalars of one log step as TensorBoard gets them: tags renamed, zero counters folded."""
    out = {}
    data_skipped = [v for k, v in values.items() if k.startswith(DATA_SKIPS) and k != REFILLED_KEY]
    updates_skipped = [v for k, v in values.items() if k.startswith(UPDATE_SKIPS)]
    if data_skipped:
        out[tensorboard_tag(DATA_TOTAL)] = float(sum(data_skipped))
    if updates_skipped:
        out[tensorboard_tag(UPDATES_TOTAL)] = float(sum(updates_skipped))
    for key, value in values.items():
        if key.startswith((DATA_SKIPS, UPDATE_SKIPS)) and value == 0:
            continue
        out[tensorboard_tag(key)] = value
    return out
