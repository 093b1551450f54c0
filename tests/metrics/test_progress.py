"""Long metrics report progress through a plain callback, and reporting changes no value."""

import numpy as np

from selfprune.metrics import prototypes
from selfprune.metrics.density import knn_density


def test_prototypes_progress_counts_rows_over_seeds(clustered):
    calls = []
    s = prototypes(clustered, k=8, seeds=[0, 1], progress=lambda d, t: calls.append((d, t)))
    n = len(clustered)
    assert calls[-1] == (2 * n, 2 * n) and all(t == 2 * n for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    np.testing.assert_array_equal(s.values, prototypes(clustered, k=8, seeds=[0, 1]).values)


def test_knn_density_progress(clustered):
    calls = []
    s = knn_density(clustered, k=5, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (len(clustered), len(clustered))
    np.testing.assert_array_equal(s.values, knn_density(clustered, k=5).values)


def test_semdedup_progress_counts_the_cluster_pass(clustered):
    from selfprune.metrics.semdedup import semdedup

    calls = []
    r = semdedup(clustered, eps=0.05, k=6, seed=0, progress=lambda d, t: calls.append((d, t)))
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(calls) == 6  # one call per cluster task
    assert calls[-1][0] == calls[-1][1] >= len(clustered)  # its rows, and the rows cross-checked
    want = semdedup(clustered, eps=0.05, k=6, seed=0)
    np.testing.assert_array_equal(r.kept, want.kept)
