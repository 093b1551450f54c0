"""The one PNG saver."""

from __future__ import annotations

import pytest

from selfprune.report.figures import save_png

matplotlib = pytest.importorskip("matplotlib")


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [2, 0, 1])
    return fig


@pytest.mark.parametrize("dpi", [None, 50])
def test_save_png_writes_what_savefig_writes_atomically(tmp_path, dpi):
    from PIL import Image

    fig = _figure()
    out = save_png(fig, tmp_path / "sub" / "a.png", dpi=dpi)
    assert out == tmp_path / "sub" / "a.png"
    kw = {} if dpi is None else {"dpi": dpi}
    fig.savefig(tmp_path / "b.png", format="png", **kw)
    assert out.read_bytes() == (tmp_path / "b.png").read_bytes()
    with Image.open(out) as im:
        width = im.size[0]
    assert width == 3 * (dpi or matplotlib.rcParams["figure.dpi"])
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.png"]  # no temp file left
