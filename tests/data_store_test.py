"""On-disk store: exact round trip, atomic and resumable writes, a picklable grain source."""
import concurrent.futures
import json
import pickle

import grain
import numpy as np
import pytest

from anylift_jax.data import store


def _records(shard, n=3):
    rng = np.random.default_rng(shard)
    out = []
    for j in range(n):
        T = int(rng.integers(1, 9))
        out.append({
            "name": f"clip{shard}_{j}",
            "keypoints": rng.normal(size=(T, 2, 17, 2)).astype(np.float32),
            "w2c": rng.normal(size=(T, 2, 4, 4)).astype(np.float32),
            "is_proj": np.float32(j % 2),
        })
    return out


def test_round_trip_exact(tmp_path):
    index = store.write_store(tmp_path, 3, _records, metadata={"kind": "test"})
    expected = [r for i in range(3) for r in _records(i)]
    assert index["records_per_shard"] == [3, 3, 3]
    assert index["frames"] == sum(len(r["keypoints"]) for r in expected)
    assert index["bytes"] > 0
    src = store.StoreSource(tmp_path)
    assert len(src) == 9 and src.metadata == {"kind": "test"}
    for i, r in enumerate(expected):
        got = src[i]
        assert set(got) == {"keypoints", "w2c", "is_proj"}
        for k in got:
            np.testing.assert_array_equal(got[k], r[k])
            assert got[k].dtype == np.asarray(r[k]).dtype
        assert src.name(i) == r["name"]
    np.testing.assert_array_equal(src[-1]["w2c"], expected[-1]["w2c"])
    with pytest.raises(IndexError, match="record 9 out of range"):
        src[9]


def test_resumable_and_atomic(tmp_path):
    calls = []

    def flaky(i):
        calls.append(i)
        if i == 2 and calls.count(2) == 1:
            raise RuntimeError("interrupted")
        return _records(i)

    with pytest.raises(RuntimeError):
        store.write_store(tmp_path, 4, flaky)
    # shards 0 and 1 are complete; nothing of shard 2 (no temp dirs), no index yet
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-00000", "shard-00001"]
    with pytest.raises(FileNotFoundError, match="store.json: missing"):
        store.StoreSource(tmp_path)
    store.write_store(tmp_path, 4, flaky)
    assert calls == [0, 1, 2, 2, 3]
    store.write_store(tmp_path, 4, flaky)  # everything there: nothing is rebuilt
    assert calls == [0, 1, 2, 2, 3]
    src = store.StoreSource(tmp_path)
    np.testing.assert_array_equal(src[7]["keypoints"], _records(2)[1]["keypoints"])


def test_bad_records_have_clear_errors(tmp_path):
    bad = _records(0)
    bad[1]["w2c"] = bad[1]["w2c"][:-1] if len(bad[1]["w2c"]) > 1 else np.zeros((2, 2, 4, 4), np.float32)
    with pytest.raises(ValueError, match="record 'clip0_1': per-frame arrays disagree on T"):
        store.write_shard(tmp_path / "s", bad)
    bad = _records(0)
    bad[2]["keypoints"] = bad[2]["keypoints"][:, :1]
    with pytest.raises(ValueError, match="key 'keypoints': records differ in shape"):
        store.write_shard(tmp_path / "s", bad)
    assert not list(tmp_path.iterdir())
    store.write_store(tmp_path / "ok", 1, _records)
    index = json.loads((tmp_path / "ok" / "store.json").read_text())
    index["format"] = "other"
    (tmp_path / "ok" / "store.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="key 'format'"):
        store.StoreSource(tmp_path / "ok")


def test_grain_source_pickles_small_and_reads_concurrently(tmp_path):
    store.write_store(tmp_path, 2, lambda i: _records(i, n=50))
    src = store.StoreSource(tmp_path)
    ref = [src[i]["keypoints"] for i in range(len(src))]
    blob = pickle.dumps(src)
    assert len(blob) < 2000
    clone = pickle.loads(blob)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: clone[i]["keypoints"], range(len(src))))
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
    ds = grain.MapDataset.source(src).shuffle(seed=3)
    order = [ds[i]["keypoints"] for i in range(len(src))]
    assert sorted(map(len, order)) == sorted(map(len, ref))
