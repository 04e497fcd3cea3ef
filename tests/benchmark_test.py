"""The per-category benchmark program (anylift_jax.benchmark): config overrides and the on/off table."""
import pytest

from anylift_jax import benchmark


def test_lift_config_overrides_take_python_literals():
    c = benchmark.lift_config(["lift.mirror_average=False", "lift.track_sigma=3.5", "body.name=smpl"])
    assert c.lift.mirror_average is False and c.lift.track_sigma == 3.5 and c.body.name == "smpl"
    assert benchmark.lift_config().lift.mirror_average is True
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        benchmark.lift_config(["lift.mirror_average"])


def test_every_ablation_switches_off_a_step_the_default_has_on():
    default = benchmark.lift_config().lift
    for name, change in benchmark.ABLATIONS.items():
        for key, off in change.items():
            assert key in default, (name, key)
            assert default[key] != off, (name, key)


def test_ablation_table_rows_and_columns():
    row = {"categories": {"dance": {"wa_mpjpe": 100.0}, "ground": {"wa_mpjpe": 200.0}},
           "mean_of_categories": {"pa_mpjpe": 50.0, "wa_mpjpe": 150.0, "w_mpjpe": 300.0, "rte": 3.0}}
    table = benchmark.ablation_markdown({"default": row, "without x": row})
    lines = table.splitlines()
    assert lines[0].startswith("| lifting | WA dance | WA ground | PA-MPJPE mean")
    assert lines[2] == "| default | 100.0 | 200.0 | 50.0 | 150.0 | 300.0 | 3.00 |"
    assert len(lines) == 4
