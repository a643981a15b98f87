"""TensorBoard's first screen shows the losses and the validation; zero counters stay off it.

The order is TensorBoard's own: its Time Series dashboard sorts tags with ``compare_tag_names``
(ported below from its frontend, ``tensorboard/webapp/util/string.ts``'s ``compareTagNames``
as bundled in tensorboard 2.x: digits compare as numbers, ``/`` and digits before other
characters, else by character code), groups them by the first path segment in that order and
opens the first two groups. The real run's event files are read back with TensorBoard's reader.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from distgan.train.board import metric_name, tensorboard_scalars, tensorboard_tag
from tests.train.helpers import read_events, run_distgan, train_args

OPENED_GROUPS = 2  # TensorBoard expands this many groups of a fresh dashboard


def _chunks(tag: str) -> list[str]:
    return re.findall(r"\d+|.", tag)


def compare_tag_names(a: str, b: str) -> int:
    for x, y in zip(_chunks(a), _chunks(b), strict=False):
        if x.isdigit() and y.isdigit():
            if int(x) != int(y):
                return -1 if int(x) < int(y) else 1
            continue
        x_first, y_first = x == "/" or x.isdigit(), y == "/" or y.isdigit()
        if x_first != y_first:
            return -1 if x_first else 1
        if not x_first and x != y:  # a "/" against a digit: TensorBoard goes on to the next character
            return -1 if x < y else 1
    return (len(_chunks(a)) > len(_chunks(b))) - (len(_chunks(a)) < len(_chunks(b)))


def groups_in_order(tags: list[str]) -> list[str]:
    ordered = sorted(tags, key=functools.cmp_to_key(compare_tag_names))
    return list(dict.fromkeys(tag.split("/", 1)[0] for tag in ordered))


def test_the_port_orders_as_tensorboard_did_for_the_old_names() -> None:
    # What the issue saw with the metric names as tags: d/, then data_skips/, and val/ last.
    old = ["val/mel_l1", "g/mel", "d/real", "data_skips/no_audio", "perf/steps_per_second", "lr/g", "grad_norm/d"]
    assert groups_in_order(old) == ["d", "data_skips", "g", "grad_norm", "lr", "perf", "val"]
    assert compare_tag_names("step2", "step10") == -1 and compare_tag_names("a/b", "a_b") == -1


def test_zero_counters_fold_into_totals_until_a_reason_is_nonzero() -> None:
    values = {"g/mel": 1.5, "data_skips/decode_error": 0.0, "data_skips/no_audio": 3.0, "data_skips/refilled": 2.0,
              "skipped_updates/g": 0.0, "skipped_updates/d": 0.0, "lr/g": 2e-4}
    assert tensorboard_scalars(values) == {
        "losses/g/mel": 1.5, "vitals/lr/g": 2e-4,
        "vitals/data/skipped": 3.0, "vitals/data_skips/no_audio": 3.0, "vitals/data_skips/refilled": 2.0,
        "vitals/skipped_updates/total": 0.0}
    for key in values:
        assert metric_name(tensorboard_tag(key)) == key


@pytest.mark.slow
def test_a_real_run_opens_on_losses_and_validation(tmp_path: Path) -> None:
    run_distgan(train_args(tmp_path, "train.max_steps=2", "log.val_every_steps=2", "log.val_clips=1",
                           "log.val_metrics=[mrstft]"), timeout=600)
    events = read_events(tmp_path)
    tags = [tag for kind in ("scalars", "audio", "images") for tag in events.Tags()[kind]]
    groups = groups_in_order(tags)
    assert groups[:OPENED_GROUPS] == ["losses", "val"], groups
    opened = [t for t in tags if t.split("/", 1)[0] in groups[:OPENED_GROUPS]]
    assert {"losses/g/mel", "losses/d/total", "val/mel_l1", "val/mrstft"} <= set(opened)
    assert not [t for t in tags if "skip" in t and t not in ("vitals/data/skipped", "vitals/skipped_updates/total")]
    assert [e.value for e in events.Scalars("vitals/data/skipped")] == [0.0, 0.0]
