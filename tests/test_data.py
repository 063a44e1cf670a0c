"""MNIST loading, checksums and the errors for missing or damaged files; mixtures; batches."""
import gzip
import shutil

import numpy as np
import pytest

from minigen import data
from minigen.data import DataError, batches, grid, load_mnist, load_mnist_sample, read_idx, ring


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No $MINIGEN_DATA, an empty user cache: only what a test puts in place is found."""
    monkeypatch.delenv("MINIGEN_DATA", raising=False)
    monkeypatch.setattr(data, "cache_dir", lambda: tmp_path / "cache")


def copy_sample_as_full(folder):
    """A folder that looks like a full MNIST copy but holds the sample's files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in data.SHA256:
        shutil.copy(data.SAMPLE_DIR / f"{name}.gz", folder / f"{name}.gz")
    return folder


def test_full_mnist_loads_with_the_documented_shapes(mnist_dir):
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = load_mnist(split, mnist_dir, download=False)
        assert x.shape == (n, 1, 28, 28) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        assert 0.0 == x.min() and x.max() == 1.0 and set(np.unique(y)) == set(range(10))
    assert y[:5].tolist() == [7, 2, 1, 0, 4]  # the canonical first test labels


def test_search_order_is_data_dir_alone_else_env_then_cache(mnist_dir, monkeypatch, tmp_path, no_env):
    monkeypatch.setenv("MINIGEN_DATA", str(mnist_dir))
    assert data.find_mnist() == mnist_dir
    assert data.search_path() == [mnist_dir, tmp_path / "cache"]
    other = tmp_path / "mine"
    copy_sample_as_full(other)
    assert data.find_mnist(other) == other
    assert data.search_path(other) == [other]  # an explicit folder wins or fails: no fallback


def test_an_explicit_data_dir_without_mnist_fails_rather_than_using_the_env(mnist_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("MINIGEN_DATA", str(mnist_dir))  # a good copy that must NOT be used instead
    (tmp_path / "mine").mkdir()
    with pytest.raises(DataError, match=r"MNIST not found in --data-dir .*mine \(missing train-images"):
        load_mnist("test", tmp_path / "mine")


def test_minigen_data_pointing_at_a_file_says_it_is_not_a_folder(tmp_path, monkeypatch):
    (tmp_path / "f.gz").write_bytes(b"x")
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path / "f.gz"))
    with pytest.raises(DataError, match=r"MINIGEN_DATA=.*f.gz is a file, not a folder"):
        load_mnist("test", download=False)
    with pytest.raises(DataError, match=r"--data-dir=.*f.gz is a file, not a folder"):
        load_mnist("test", tmp_path / "f.gz")


def test_an_empty_file_is_called_empty_and_an_unreadable_one_is_not_to_be_deleted(tmp_path, monkeypatch):
    (tmp_path / "empty.gz").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty.gz: the file is empty \(0 bytes\)"):
        read_idx(tmp_path / "empty.gz")
    locked = tmp_path / "locked.gz"
    shutil.copy(data.SAMPLE_DIR / "t10k-labels-idx1-ubyte.gz", locked)

    def refuse(*args, **kwargs):  # what a file of another user, mode 0600, gives (root would read it)
        raise PermissionError(13, "Permission denied", str(locked))

    monkeypatch.setattr(gzip, "open", refuse)
    with pytest.raises(DataError, match="permission denied") as err:
        read_idx(locked)
    assert "delete" not in str(err.value).lower() and "chmod" in str(err.value)


def test_the_packaged_sample_is_real_mnist(mnist_dir):
    xs, ys = load_mnist_sample("train")
    x, y = load_mnist("train", mnist_dir, download=False)
    assert xs.shape == (3000, 1, 28, 28) and len(load_mnist_sample("test")[0]) == 1000
    np.testing.assert_array_equal(xs, x[:3000])
    np.testing.assert_array_equal(ys, y[:3000])


def test_missing_data_says_where_to_put_which_files(tmp_path, no_env):
    with pytest.raises(DataError) as err:
        load_mnist("train", tmp_path / "nowhere", download=False)
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message and "MINIGEN_DATA" in message
    for name, digest in data.SHA256.items():
        assert f"{name}.gz" in message and digest in message


def test_fallback_to_the_sample_warns_loudly(tmp_path, no_env, capsys):
    with pytest.warns(UserWarning, match="NOT comparable"):
        x, _ = load_mnist("test", tmp_path, download=False, fallback_to_sample=True)
    assert len(x) == 1000 and capsys.readouterr().err == ""  # library code warns; it does not print


def test_a_file_with_other_contents_fails_its_checksum(tmp_path, no_env):
    """The sample's files are valid IDX but not the canonical ones: the checksum must catch it."""
    folder = copy_sample_as_full(tmp_path / "mnist")
    with pytest.raises(DataError, match="checksum mismatch(.|\n)*expected SHA-256 ba891046"):
        load_mnist("train", folder, download=False)


def test_truncated_and_corrupt_files_name_the_file_and_checksum(tmp_path):
    raw = gzip.open(data.SAMPLE_DIR / "t10k-labels-idx1-ubyte.gz").read()
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes((data.SAMPLE_DIR / "t10k-images-idx3-ubyte.gz").read_bytes()[:5000])
    with pytest.raises(DataError, match=r"truncated.gz: not a readable gzip file.*SHA-256 is abc"):
        read_idx(truncated, "abc")
    garbage = tmp_path / "garbage.gz"
    garbage.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match="garbage.gz: not a readable gzip"):
        read_idx(garbage)
    short_payload = tmp_path / "short.gz"
    short_payload.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(DataError, match="header promises"):
        read_idx(short_payload)
    bad_magic = tmp_path / "magic.gz"
    bad_magic.write_bytes(gzip.compress(b"\x01\x02" + raw[2:]))
    with pytest.raises(DataError, match="bad magic number"):
        read_idx(bad_magic)
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "absent.gz")


def test_bad_split_is_refused():
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_mnist("validation")


def test_batches_cover_every_example_once_in_a_seeded_order():
    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    got = list(batches(np.random.default_rng(0), x, y, batch_size=4))
    assert [len(b[0]) for b in got] == [4, 4, 2]
    assert sorted(np.concatenate([b[1] for b in got]).tolist()) == list(range(10))
    again = list(batches(np.random.default_rng(0), x, y, batch_size=4))
    assert all((a[1] == b[1]).all() for a, b in zip(got, again))
    assert [len(b[0]) for b in batches(None, x, batch_size=4, shuffle=False, drop_last=True)] == [4, 4]


def test_batches_refuse_nan_and_mismatched_lengths():
    x = np.zeros((6, 1, 2, 2), np.float32)
    x[4, 0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="example 4 contains NaN"):
        next(batches(np.random.default_rng(0), x))
    with pytest.raises(ValueError, match="different lengths"):
        next(batches(None, np.zeros(3), np.zeros(4)))


@pytest.mark.parametrize("make, n_modes", [(ring, 8), (grid, 25)])
def test_mixtures_put_their_samples_near_the_returned_centres(make, n_modes):
    mix = make(np.random.default_rng(0), n=5000)
    assert mix.x.shape == (5000, 2) and mix.x.dtype == np.float32 and mix.centres.shape == (n_modes, 2)
    nearest = np.linalg.norm(mix.x[:, None] - mix.centres[None], axis=2).argmin(axis=1)
    np.testing.assert_array_equal(nearest, mix.labels)
    assert np.linalg.norm(mix.x - mix.centres[mix.labels], axis=1).max() < 6 * mix.std
    assert len(np.unique(mix.labels)) == n_modes


def test_download_tries_each_mirror_in_turn_and_checks_the_result(tmp_path, no_env, monkeypatch):
    """No network in tests: pooch.retrieve is replaced by a fake whose first mirror is down."""
    import pooch
    tried = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        tried.append(url)
        if url.startswith(data.MIRRORS[0]):
            raise ConnectionError("mirror down")
        assert known_hash == data.DOWNLOAD_HASH[fname[:-3]]
        path.mkdir(parents=True, exist_ok=True)
        shutil.copy(data.SAMPLE_DIR / fname, path / fname)  # valid IDX, but not the canonical bytes

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    with pytest.raises(DataError, match="checksum mismatch"):  # the uncompressed SHA-256 is checked after download
        load_mnist("test")  # no --data-dir: look in the (empty) cache, then download into it
    assert tried[:2] == [data.MIRRORS[0] + "train-images-idx3-ubyte.gz", data.MIRRORS[1] + "train-images-idx3-ubyte.gz"]
    assert len(tried) == 8


def test_offline_download_failure_ends_in_the_not_found_message(tmp_path, no_env, monkeypatch, capsys):
    import pooch

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(DataError, match="MNIST not found"), \
            pytest.warns(UserWarning, match="could not download train-images-idx3-ubyte.gz"):
        load_mnist("train")
    assert capsys.readouterr().err == ""
