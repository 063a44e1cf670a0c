"""minigen animate: a GIF of a run's per-epoch sample grids, in epoch order, captioned."""
import json

import numpy as np
import pytest
from PIL import Image

from minigen import animate, viz
from minigen.cli import main


@pytest.fixture
def run_dir(tmp_path):
    """A tiny run: grids for epochs 1, 2, 10 (10 cut short by a time budget: no summary line)."""
    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    for epoch, brightness in ((10, 0.9), (1, 0.1), (2, 0.5)):  # written out of order on purpose
        viz.save_image_grid(brightness * rng.random((4, 1, 28, 28)), run / "samples" / f"epoch_{epoch:03d}.png", 2)
    (run / "config.json").write_text(json.dumps({"model": "gan"}))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "summary": True, "d_real": 0.5}) + "\n"
                                               for e in (1, 2)))
    return run


def test_the_grids_come_in_epoch_order_with_their_captions(run_dir):
    assert [e for e, _ in animate.epoch_grids(run_dir)] == [1, 2, 10]
    finished = animate.finished_epochs(run_dir)
    assert animate.caption(2, finished, "gan") == "gan, epoch 2"
    assert animate.caption(10, finished, "gan") == "gan, epoch 10 (part)"


def test_minigen_animate_writes_one_frame_per_epoch_in_order(run_dir, tmp_path, capsys):
    out = tmp_path / "a.gif"
    assert main(["animate", str(run_dir), "--out", str(out), "--fps", "5"]) == 0
    assert "3 epochs' sample grids" in capsys.readouterr().out
    gif = Image.open(out)
    assert gif.n_frames == 3  # the held last frame is merged into one longer frame
    brightness = []
    for i in range(3):
        gif.seek(i)
        assert gif.info["duration"] >= 200  # 5 frames per second, the last held longer
        brightness.append(np.asarray(gif.convert("L"), np.float64).mean())
    assert brightness[0] < brightness[1] < brightness[2]  # the grids were drawn dimmer to brighter by epoch


def test_minigen_animate_defaults_to_a_gif_in_the_run(run_dir):
    assert main(["animate", str(run_dir)]) == 0
    assert (run_dir / "training.gif").stat().st_size > 0


def test_clear_errors_for_a_run_without_grids_or_a_wrong_name(tmp_path, run_dir, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["animate", str(tmp_path / "empty")]) == 1
    assert "no sample grids in" in capsys.readouterr().err
    assert main(["animate", str(tmp_path / "missing")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    assert main(["animate", str(run_dir), "--out", str(tmp_path / "a.png")]) == 1
    assert "name a .gif file" in capsys.readouterr().err
    for fps in ("0", "nan"):
        assert main(["animate", str(run_dir), "--fps", fps]) == 1
        assert "--fps must be a finite number > 0" in capsys.readouterr().err
