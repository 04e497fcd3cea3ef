"""The one config system (anylift_jax.config) and every shipped config: each loads, builds its data
source and model, and trains a step through `train.train`."""
import argparse
import json
import os

import numpy as np
import pytest

import anylift_jax
from anylift_jax import config as config_lib
from anylift_jax import train
from anylift_jax.data import build

# Every model config and variant a user can train, and whether it compiles in seconds (the rest
# are paper-sized: the slow job).
MODEL_CONFIGS = [
    ("single_view.py:tiny", True), ("multi_view.py:tiny", True), ("hoi.py:tiny", True),
    ("single_view.py:paper", False), ("single_view.py:v5p-8", False), ("multi_view.py:small", False),
    ("multi_view.py:corpus", False), ("multi_view.py:paper", False), ("hoi.py:paper", False),
]
OTHER_CONFIGS = ["lift/default.py", "synth/hop.py", "data/mocap_single_view.py", "data/mocap_multi_view.py",
                 "data/hoi_multi_view.py"]


def test_every_shipped_config_file_is_listed():
    files = {os.path.relpath(os.path.join(d, f), anylift_jax.CONFIGS)
             for d, _, fs in os.walk(anylift_jax.CONFIGS) for f in fs if f.endswith(".py")}
    assert files == {name.partition(":")[0] for name, _ in MODEL_CONFIGS} | set(OTHER_CONFIGS)
    for name in OTHER_CONFIGS:
        assert config_lib.load(f"configs/{name}") is not None


def test_a_packaged_config_resolves_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for spec in ("configs/lift/default.py", "lift/default.py", str(anylift_jax.CONFIGS / "lift" / "default.py")):
        assert config_lib.load(spec).lift.fit_body is True
    with pytest.raises(FileNotFoundError, match="nope.py"):
        config_lib.load("configs/nope.py")
    (tmp_path / "mine.py").write_text("import ml_collections\n"
                                      "def get_config(arg=None):\n    return ml_collections.ConfigDict({'x': arg})\n")
    assert config_lib.load("mine.py:7").x == "7" and config_lib.load("mine.py").x is None


def test_variants_differ_as_documented():
    tiny, small, corpus = (config_lib.load(f"configs/multi_view.py:{v}") for v in ("tiny", "small", "corpus"))
    assert tiny.model.d_model == small.model.d_model == corpus.model.d_model == 128
    assert not tiny.data.get("mirror", False) and small.data.mirror and corpus.data.corpus
    assert config_lib.load("configs/multi_view.py:paper").model.d_model == 512
    pod = config_lib.load("configs/single_view.py:v5p-64")
    assert pod.data.batch_size == 512 and pod.train.num_steps * 512 == 600_000 * 32
    assert config_lib.load("configs/hoi.py:tiny").model.num_object_keypoints == 8
    with pytest.raises(ValueError, match="unknown variant"):
        config_lib.load("configs/multi_view.py:huge")


def test_overrides_take_python_literals_and_reject_unknown_keys():
    c = config_lib.load("configs/lift/default.py")
    config_lib.override(c, ["lift.mirror_average=False", "lift.track_sigma=3", "body.name=smpl", "body.path=x.pkl"])
    assert c.lift.mirror_average is False and c.lift.track_sigma == 3.0 and isinstance(c.lift.track_sigma, float)
    assert c.body.name == "smpl" and c.body.path == "x.pkl"
    with pytest.raises(KeyError, match="track_sigmaa"):
        config_lib.override(c, ["lift.track_sigmaa=1"])
    with pytest.raises(ValueError, match="expected --config.KEY=VALUE"):
        config_lib.override(c, ["lift.mirror_average"])
    with pytest.raises(ValueError, match="smooth_sigma"):
        config_lib.override(c, ["lift.smooth_sigma=wide"])


def test_parse_reads_both_override_spellings_and_rejects_strays():
    parser = argparse.ArgumentParser()
    config_lib.add_argument(parser, default="configs/lift/default.py")
    parser.add_argument("--out")
    args = config_lib.parse(parser, ["--out", "o", "--config.lift.overlap=16", "--config.seed", "3"])
    assert args.out == "o" and args.config.lift.overlap == 16 and args.config.seed == 3
    with pytest.raises(SystemExit):
        config_lib.parse(parser, ["--bogus", "1"])
    with pytest.raises(SystemExit):
        config_lib.parse(parser, ["--config.lift.nothing=1"])


def _one_step(name, tmp_path):
    """`name` shrunk in batch, frames and store size only (the network as shipped), one step."""
    c = config_lib.load(f"configs/{name}")
    d = c.data
    d.batch_size, d.num_frames = 8, 16
    if d.name == "pipeline":
        d.root = str(tmp_path / "store")
        d.renders_per_clip = 1
        if d.kind == "single_view":
            d.proj_per_clip = 1
        build.build(c, d.root, progress=False)
    c.train.update(num_steps=1, log_every=1, checkpoint_every=1, sample_every=0)
    state = train.train(c, str(tmp_path / "run"))
    assert int(state["step"]) == 1
    with open(tmp_path / "run" / "metrics.jsonl") as f:
        logged = [json.loads(line) for line in f]
    assert logged and np.isfinite(logged[-1]["loss"]), logged


@pytest.mark.parametrize("name", [n for n, fast in MODEL_CONFIGS if fast])
def test_tiny_configs_train_a_step(name, tmp_path):
    _one_step(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, fast in MODEL_CONFIGS if not fast])
def test_paper_and_corpus_configs_train_a_step(name, tmp_path):
    _one_step(name, tmp_path)
