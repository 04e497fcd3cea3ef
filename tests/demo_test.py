"""The README's first command (anylift_jax.demo): the shipped model lifts the held-out clips far
better than back-projection, and the table is never made from an earlier run's outputs."""
import json

import pytest

from anylift_jax import baselines, demo
from anylift_jax.data import heldout


@pytest.mark.slow
def test_demo_lifts_the_heldout_clips_with_the_shipped_model(tmp_path):
    # An earlier run's outputs (here: back-projection) sit where the demo writes its lifting.
    archive_dir, _ = heldout.build(tmp_path / "heldout")
    written, bad = baselines.run("backproject", archive_dir, tmp_path / "lifted")
    assert written == 6 and not bad
    assert demo.main(["--workdir", str(tmp_path)]) == 0
    mean = {m: r["mean"] for m, r in json.loads((tmp_path / "results.json").read_text()).items()}
    ours, naive = mean["anylift"], mean["backproject"]
    # docs/results.md: PA-MPJPE 53.5, WA-MPJPE100 124.1 mm against 177.2 / 310.4 for back-projection
    assert ours["pa_mpjpe"] < 70 and ours["wa_mpjpe"] < 160
    assert ours["pa_mpjpe"] < 0.5 * naive["pa_mpjpe"] and ours["wa_mpjpe"] < 0.6 * naive["wa_mpjpe"]
    assert (tmp_path / "results.md").exists() and (tmp_path / "amp_humanoid_hop__internet.png").exists()
