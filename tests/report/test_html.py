"""The report template without a browser: self-contained output, escaping, digests, provenance, the writer."""

from __future__ import annotations

import base64
import os
import re
import time

import numpy as np
import pytest

from selfprune.errors import InvalidInputError
from selfprune.report.blocks import extremes, kept_share, score_galleries
from selfprune.report.html import (
    Gallery,
    Image,
    Page,
    Section,
    Table,
    Tile,
    Verdict,
    digest,
    provenance,
    render,
    write_report,
)


def _figure():
    from selfprune.report.figures import new_figure

    fig = new_figure(3, 2)
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def test_render_embeds_every_picture_and_loads_nothing_else():
    page = Page("t", Verdict("v", "good", "+1.00"), [Section("s", [
        "para", Table(["a", "b"], [[1, 2.5]]), Image(_figure(), "cap"),
        Gallery("g", [Tile("img", image=np.arange(64).reshape(8, 8)), Tile("txt", text="hello")]),
    ])], {"command": "selfprune demo"})  # fmt: skip
    text = render(page)
    sources = re.findall(r"<img src='([^']*)'", text)
    assert len(sources) == 2
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script" not in text and "<link" not in text and "http" not in text.replace("http-equiv", "")
    assert text.index("+1.00") < text.index("<h2>s</h2>") < text.index("Provenance")


def test_render_escapes_text_and_refuses_unknown_blocks():
    text = render(Page("<b>x</b>", Verdict("<script>alert(1)</script>"), [Section("s", ["a & b"])]))
    assert "<script>alert" not in text and "&lt;script&gt;" in text and "a &amp; b" in text
    with pytest.raises(InvalidInputError, match="tone"):
        render(Page("t", Verdict("v", tone="great")))
    with pytest.raises(InvalidInputError, match="block"):
        render(Page("t", Verdict("v"), [Section("s", [42])]))  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="PNG"):
        render(Page("t", Verdict("v"), [Section("s", [Image(b"not a png")])]))


def test_digest_hashes_small_files_whole_and_big_files_by_their_ends(tmp_path):
    small = tmp_path / "s.bin"
    small.write_bytes(b"abc")
    assert digest(small).startswith("sha256 ba7816bf")  # sha256("abc")
    big = tmp_path / "b.bin"
    data = bytearray(os.urandom(5 << 20))
    big.write_bytes(bytes(data))
    first = digest(big)
    assert "first and last MiB" in first
    data[len(data) // 2] ^= 0xFF  # the middle is not read: documented as the price of a cheap digest
    big.write_bytes(bytes(data))
    assert digest(big) == first
    data[0] ^= 0xFF
    big.write_bytes(bytes(data))
    assert digest(big) != first
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    before = digest(folder)
    (folder / "manifest.json").write_text("{ }")
    assert digest(folder) != before and "file names and sizes" in before
    assert "not a file" in digest("digits")


def test_provenance_rows(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("x")
    rows = provenance(inputs={"--data": f, "--scores": None}, seed=3, started=time.time() - 2.0,
                      argv=["selfprune", "demo", "--out", "a b"])  # fmt: skip
    assert rows["command"] == "selfprune demo --out 'a b'"
    assert rows["seed"] == "3" and "input --scores" not in rows
    assert rows["input --data"].startswith(f"{f}: sha256 ")
    assert float(rows["wall time"].split()[0]) >= 2.0
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows["date"])


def test_write_report_is_atomic_and_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_report(Page("t", Verdict("v")), tmp_path / "run")
    finally:
        os.umask(old)
    assert path == tmp_path / "run" / "report.html"
    assert path.stat().st_mode & 0o777 == 0o640
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_extremes_and_galleries_pick_the_planted_examples():
    v = np.array([0.5, 9.0, -3.0, 0.4, 0.6, 7.0, -2.0])
    e = extremes(v, 2)
    assert e["hardest"].tolist() == [1, 5] and e["easiest"].tolist() == [2, 6]
    assert e["most typical"].tolist()[0] == 0  # the median itself
    ids = np.arange(100, 107)
    images = np.arange(7 * 4).reshape(7, 2, 2)
    gal = score_galleries(v, ids, lambda p: images[p], "image", name="s", n=1)
    assert [g.title for g in gal] == ["hardest by s", "easiest by s", "most typical by s"]
    assert gal[0].tiles[0].label.startswith("id 101") and np.array_equal(gal[0].tiles[0].image, images[1])
    texts = ["a", "b", "c", "d", "e", "f", "g"]
    assert score_galleries(v, ids, lambda p: [texts[i] for i in p], "text", name="s", n=1)[1].tiles[0].text == "c"
    assert score_galleries(v, ids, lambda p: images[p], "features", name="s") == []


def test_kept_share_counts_per_group():
    t = kept_share(np.array([0, 0, 1, 1, 1, 2]), np.array([1, 0, 1, 1, 1, 0], dtype=bool))
    rows = {r[0]: r for r in t.rows}
    assert rows["0"][1:4] == [2, 1, 0.5] and rows["1"][3] == 1.0 and rows["2"][2] == 0
    assert rows["1"][4] == pytest.approx(1.0 / (4 / 6))
