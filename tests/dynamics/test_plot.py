import numpy as np

from selfprune.dynamics.plot import data_map
from selfprune.metrics.cartography import CartographyStats


def test_data_map_png_and_subsampling(tmp_path):
    rng = np.random.default_rng(0)
    stats = CartographyStats(rng.random(500), rng.random(500) * 0.4, rng.random(500))
    path = data_map(stats, tmp_path / "sub" / "map.png", max_points=100)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "sub").glob(".*.tmp"))
