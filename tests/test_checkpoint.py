"""Parameters saved atomically and loaded without pickle."""
import numpy as np
import pytest

from minigen import nn
from minigen.checkpoint import load_params, save_params


def model(width=4):
    net = nn.Sequential(nn.Dense(width), nn.ReLU(), nn.Dense(2))
    return net.init(np.random.default_rng(0), (3,))[1]


def test_round_trip_restores_every_array(tmp_path):
    params = model()
    save_params(tmp_path / "p.npz", params, accuracy=0.5)
    loaded, extra = load_params(tmp_path / "p.npz", like=model())
    for a, b in zip(params, loaded):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    assert float(extra["accuracy"]) == 0.5
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed away


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    save_params(tmp_path / "p.npz", model(width=4))
    with pytest.raises(ValueError, match=r"params/0/W is float32\(3, 4\), the model expects float32\(3, 5\)"):
        load_params(tmp_path / "p.npz", like=model(width=5))
    with pytest.raises(ValueError, match="another model"):
        load_params(tmp_path / "p.npz", like=[{}])


def test_corrupt_and_pickled_files_are_refused(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable minigen .npz"):
        load_params(tmp_path / "bad.npz", like=model())
    np.savez(tmp_path / "pickled.npz", obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="holds pickled Python objects.*refused"):
        load_params(tmp_path / "pickled.npz", like=model())
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_params(tmp_path / "absent.npz", like=model())


def test_a_write_that_fails_halfway_leaves_the_previous_file(tmp_path, monkeypatch):
    save_params(tmp_path / "p.npz", model())

    def crash_halfway(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", crash_halfway)
    with pytest.raises(RuntimeError, match="disk full"):
        save_params(tmp_path / "p.npz", model(width=5))
    monkeypatch.undo()
    load_params(tmp_path / "p.npz", like=model())  # still the old, complete file
    assert not list(tmp_path.glob("*.tmp"))


def test_objects_that_need_pickle_are_not_saved(tmp_path):
    with pytest.raises(TypeError, match="'bad': object arrays need pickle"):
        save_params(tmp_path / "p.npz", model(), bad=object())


def test_checkpoints_get_the_usual_file_permissions(tmp_path):
    import os
    import stat
    save_params(tmp_path / "p.npz", model())
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "p.npz").st_mode) == 0o666 & ~mask
