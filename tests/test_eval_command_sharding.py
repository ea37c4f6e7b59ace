"""Sharded ``univlg eval``: two shards cover every scene once and merge to the single-process result; under
torchrun (2 gloo processes) rank 0 writes the same JSON as one process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.test_eval_command import run_eval
from univlg.evaluation import EvalOptions, merge_shards, plan_evaluation, run_shard
from univlg.model import UniVLG


@pytest.mark.parametrize("benchmark", ["synthetic", "scannet200"])
def test_two_shards_cover_all_scenes_and_merge_to_the_single_process_result(
    eval_checkpoint,
    synthetic_root,
    benchmark,
):
    options = EvalOptions(benchmark=benchmark, data_root=synthetic_root, split="train")
    plan = plan_evaluation(options)
    model = UniVLG.from_pretrained(eval_checkpoint)
    shards = [run_shard(model, plan, options, rank, 2) for rank in range(2)]
    scenes = [{plan.keys[i] for i in shard} for shard in shards]
    assert scenes[0] and scenes[1] and not scenes[0] & scenes[1]
    assert scenes[0] | scenes[1] == set(plan.keys) and len(set(plan.keys)) == 2
    assert sorted(i for shard in shards for i in shard) == list(range(len(plan.items)))
    single = merge_shards(plan, options, [run_shard(model, plan, options, 0, 1)])
    assert merge_shards(plan, options, shards) == single
    assert merge_shards(plan, options, shards[::-1]) == single  # gather order does not matter


@pytest.mark.slow
def test_torchrun_with_two_gloo_processes_writes_the_single_process_result(
    eval_checkpoint,
    synthetic_root,
    tmp_path,
):
    single = run_eval(eval_checkpoint, synthetic_root, "synthetic", tmp_path, "--split", "train")
    out = tmp_path / "sharded.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "univlg", "eval", "--checkpoint", str(eval_checkpoint), "--benchmark", "synthetic",
               "--data-root", str(synthetic_root), "--split", "train", "--device", "cpu", "--quiet",
               "--out", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    sharded = json.loads(out.read_text())
    assert sharded["settings"]["processes"] == 2 and single["settings"]["processes"] == 1
    for key in ("metrics", "per_item", "counts"):
        assert sharded[key] == single[key]
