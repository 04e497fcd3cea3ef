"""The per-category benchmark program (anylift_jax.benchmark): the on/off table."""
from anylift_jax import benchmark, lifting
from anylift_jax import config as config_lib


def test_every_ablation_switches_off_a_step_the_default_has_on():
    default = config_lib.load(lifting.DEFAULT_CONFIG).lift
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


def test_quality_report_ranks_and_counts_flagged_worst_clips():
    clips = {f"c{i}": {"wa_mpjpe": 10.0 * (i + 1)} for i in range(20)}  # c19 worst
    summary = {"quality": {f"c{i}": 1.0 - i / 20 for i in range(20)}, "flagged": ["c19", "c17"]}
    q = benchmark.quality_report(summary, clips)
    assert q["clips"] == 20 and abs(q["spearman"] - 1.0) < 1e-9
    assert q["worst_flagged"] == 0.5 and q["flagged"] == 0.1  # worst 10 %: c19, c18
    reversed_q = benchmark.quality_report({"quality": {k: 1 - v for k, v in summary["quality"].items()},
                                           "flagged": []}, clips)
    assert abs(reversed_q["spearman"] + 1.0) < 1e-9 and reversed_q["worst_flagged"] == 0.0
