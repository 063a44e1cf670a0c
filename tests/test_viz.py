"""viz writes its PNGs without touching matplotlib's backend, and writes the right pixels."""
import subprocess
import sys

import numpy as np

from minigen import viz

# A fresh interpreter whose user chose a backend (svg here, as a notebook chooses its inline one):
# every viz function must leave that choice alone.
KEEPS_BACKEND = """
import sys
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
from minigen import viz
plt.figure()  # the user's own open figure
out = sys.argv[1]
viz.save_image_grid([[[[0.0]]], [[[1.0]]]], out + "/grid.png", ncol=2)
viz.save_curves([{"loss": 2.0}, {"loss": 1.0}], out + "/curves.png")
viz.save_training_panels([{"step": i, "d_real": 0.5, "g_loss": 1.0, "g_norm": 2.0} for i in range(20)],
                         out + "/panels.png")
print(matplotlib.get_backend(), plt.get_fignums())
"""


def test_pictures_leave_the_backend_and_the_users_figures_alone(tmp_path):
    done = subprocess.run([sys.executable, "-c", KEEPS_BACKEND, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "[1]"]
    assert all((tmp_path / name).stat().st_size > 0 for name in ("grid.png", "curves.png", "panels.png"))


def test_image_grid_pixels(tmp_path):
    """A black and a white 2x3 image side by side, 1-pixel white gaps: checked pixel by pixel."""
    import matplotlib.image

    images = np.stack([np.zeros((1, 2, 3)), np.ones((1, 2, 3))]).astype(np.float32)
    picture = matplotlib.image.imread(viz.save_image_grid(images, tmp_path / "g.png", ncol=2))
    grey = picture[..., 0]
    expected = np.ones((4, 9))  # (1 + 2 + 1) rows, (1 + 3 + 1 + 3 + 1) columns
    expected[1:3, 1:4] = 0
    assert grey.shape == expected.shape
    np.testing.assert_allclose(grey, expected, atol=1 / 255)
