"""``selfprune audit`` end to end on digits: audit.json with a verdict, the reports, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selfprune.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from selfprune.embed import get_encoder
    from selfprune.embed.run import embed
    from selfprune.io.sources import load_source
    from selfprune.io.tables import write_scores
    from selfprune.metrics import prototypes

    root = tmp_path_factory.mktemp("audit")
    ds = load_source("digits")
    store = embed(ds, get_encoder("pixels", dim=16), root / "emb", fit_rows=2000)
    write_scores(root / "scores.parquet", prototypes(store, k=10, seed=0))
    return root


def test_audit_writes_json_markdown_html_and_plots(files, capsys):
    out = files / "out"
    code = main(
        [
            "audit",
            "--embeddings",
            str(files / "emb"),
            "--scores",
            str(files / "scores.parquet"),
            "--score-column",
            "prototypes",
            "--data",
            "digits",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    doc = json.loads((out / "audit.json").read_text())
    # the verdict is the worst check status, and every warn or fail is one of its reasons
    worst = max({"pass": 0, "skip": 0, "warn": 1, "fail": 2}[c["status"]] for c in doc["checks"])
    assert doc["verdict"] == ("trust", "caution", "do not trust")[worst]
    flagged = sorted(
        f"{c['status']}: {c['name']}: {c['detail']}" for c in doc["checks"] if c["status"] in ("warn", "fail")
    )
    assert sorted(doc["reasons"]) == (flagged or ["every check passed"])
    names = {c["name"] for c in doc["checks"]}
    assert {"seed stability", "null: input norm", "null: untrained network", "agreement"} <= names
    assert doc["figures"]["agreement"]["n_labelled"] == 1438  # labels came from the store
    for f in ("audit.md", "report.html", "audit-stability.png", "audit-health.png"):
        assert (out / f).stat().st_size > 0
    assert (out / "audit-stability.png").read_bytes()[:4] == b"\x89PNG"
    assert "verdict" in capsys.readouterr().out


def test_audit_labels_none_and_unknown_column(files, capsys):
    out = files / "out2"
    code = main(
        [
            "audit",
            "--embeddings",
            str(files / "emb"),
            "--scores",
            str(files / "scores.parquet"),
            "--labels",
            "none",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    doc = json.loads((out / "audit.json").read_text())
    assert doc["verdict"] != "trust" and "agreement" not in doc["figures"]
    code = main(
        [
            "audit",
            "--embeddings",
            str(files / "emb"),
            "--scores",
            str(files / "scores.parquet"),
            "--score-column",
            "nope",
            "--out",
            str(out),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err


def test_audit_partial_labels_from_parquet(files):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from selfprune.io.sources import load_source

    ds = load_source("digits")
    pq.write_table(pa.table({"id": ds.ids[:300], "label": ds.labels[:300]}), files / "few.parquet")
    out = files / "out3"
    assert (
        main(
            [
                "audit",
                "--embeddings",
                str(files / "emb"),
                "--scores",
                str(files / "scores.parquet"),
                "--labels",
                str(files / "few.parquet"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads((out / "audit.json").read_text())
    assert doc["figures"]["agreement"]["n_labelled"] == 300
    assert np.isfinite(doc["figures"]["agreement"]["spearman"])
