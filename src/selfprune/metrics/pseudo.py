"""Pseudo-labels: classes found in the embeddings, for label-free training dynamics (ELFS).

ELFS (Zheng et al., ICLR 2025) replaces human labels by cluster assignments, trains a proxy network
on them and records its training dynamics. Here the clusters come from two steps, both written as
*fit on a sample, then map over chunks*:

1. **k-means**: faiss spherical k-means on L2-normalised rows, fitted on at most
   ``k * max_points_per_centroid`` rows; every row goes to its most similar centroid.
2. **neighbour refinement** (``refine="neighbours"``, in the spirit of SCAN, Van Gansbeke et al.
   2020): a small head (D -> 256 -> k MLP) is trained on the frozen embeddings of a sample so that
   every example and its nearest neighbours get the same cluster, with an entropy term that keeps
   all clusters in use; the head then labels every row. Neighbours in a good embedding mostly share
   a class, so the refined clusters follow the classes more closely than k-means cells do
   (measured in docs/labelfree.md).

``confidence`` is the probability of the chosen cluster: the softmax over the cosine similarities
to all centroids at temperature ``KMEANS_TEMPERATURE`` for k-means, the head's softmax for the
refinement.

When ``k`` is not given, :func:`choose_k` picks it from the number of rows (documented there).
Same inputs and seed give the same labels; a store streamed in chunks gives the labels of the
array in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from selfprune._checks import SeedLike, as_rng, check_ids, check_int, seed_int
from selfprune.engine.base import Engine, get_engine, sample_rows, source_of, stack
from selfprune.errors import InvalidInputError, require
from selfprune.metrics._kernel import by_row_blocks
from selfprune.metrics._kmeans import fit_centroids, normalize_rows, unit_rows

REFINE = ("none", "neighbours")
COMBINE = ("vote", "heads")
CONSENSUS = (
    "restarts matched by overlap (Hungarian) to the one that agrees most with the others, majority vote; "
    "confidence = mean over restarts of each one's confidence where it voted for the winner"
)
KMEANS_TEMPERATURE = 0.05
"""Softmax temperature over cosine similarities that turns k-means assignments into confidences."""
MIN_K, MAX_K, ROWS_PER_CLUSTER = 10, 100, 6000


@dataclass(frozen=True, eq=False)
class PseudoLabels:
    """One cluster per example: ``labels[i]`` in ``[0, k)`` and its ``confidence[i]`` in (0, 1].

    ``restart_labels``, (R, N), is set by ``pseudo_labels(restarts=R, combine="heads")``: every
    restart's clusters, restart 0 first (``labels`` is restart 0's). Label-free dynamics then train
    one proxy with a head per restart (:func:`~selfprune.dynamics.train.labelfree_dynamics`).
    """

    ids: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    k: int
    meta: dict[str, Any] = field(default_factory=dict)
    restart_labels: np.ndarray | None = None

    @property
    def heads(self) -> int:
        """Labelings the proxy learns at once: R with ``combine="heads"``, else 1."""
        return 1 if self.restart_labels is None else len(self.restart_labels)

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> np.ndarray:
        """Examples per cluster, (k,)."""
        return np.bincount(self.labels, minlength=self.k)

    def purity(self, labels) -> float:
        """Share of examples whose cluster's majority class is their own (needs true labels)."""
        y = np.asarray(labels, dtype=np.int64)
        if len(y) != len(self):
            raise InvalidInputError(f"PseudoLabels.purity: {len(y)} labels for {len(self)} examples")
        joint = np.zeros((self.k, int(y.max()) + 1), dtype=np.int64)
        np.add.at(joint, (self.labels, y), 1)
        return float(joint.max(axis=1).sum() / len(y))


def choose_k(n: int) -> int:
    """The default number of clusters for ``n`` rows: ``n / 6000``, clipped to [10, 100].

    A label-free rule from the size of the data alone, grounded in what was measured on
    Fashion-MNIST (60,000 rows, pixel PCA, neighbour refinement; ``bench/labelfree_routes.py``):
    10 clusters gave the dynamics score that tracked supervised difficulty best (Spearman 0.34 to
    0.44 with true-label EL2N over two clustering seeds, against 0.32 to 0.34 at k = 25 and 0.23 to
    0.28 at k = 50), because a proxy trained on many small cells learns boundaries that cut
    through classes.
    So the rule stays near 10 for data sets of up to about 10^5 rows and grows slowly beyond
    (1,000,000 rows: 100 clusters), where more classes are likely and every cluster still holds
    thousands of rows. Pass ``k`` when the number of classes is known.
    """
    return int(min(MAX_K, max(MIN_K, round(n / ROWS_PER_CLUSTER))))


def pseudo_labels(
    embeddings,
    *,
    k: int | None = None,
    refine: str = "neighbours",
    seed: SeedLike = 0,
    ids=None,
    neighbours: int = 20,
    epochs: int = 30,
    fit_rows: int = 100_000,
    niter: int = 20,
    max_points_per_centroid: int = 256,
    restarts: int = 1,
    combine: str = "vote",
    encoder: str | None = None,
    engine: Engine | str | None = None,
) -> PseudoLabels:
    """Cluster ``embeddings`` (an (N, D) array, a ``.npy`` memory map or an EmbeddingStore) into
    ``k`` pseudo-classes. The fits run here on samples; labelling every row runs on ``engine``.

    ``refine="neighbours"`` (default) trains the neighbour-consistency head on a sample of at most
    ``fit_rows`` rows with ``neighbours`` nearest neighbours each, for ``epochs`` passes;
    ``"none"`` keeps the k-means assignment. ``k=None`` uses :func:`choose_k`. A cluster may end
    empty (more often with the refinement); ``meta["empty_clusters"]`` counts them.

    ``restarts > 1`` clusters that many times (k-means and head from seeds drawn in turn from
    ``seed``; the refinement's sample and its neighbours are shared). One clustering depends much
    on its seed (measured in docs/labelfree.md), and ``combine`` says what to do with several:
    ``"vote"`` returns their consensus (:func:`consensus_labels`); ``"heads"`` keeps every
    restart's clusters in ``restart_labels`` (``labels`` is restart 0's), so that one proxy learns
    them all, a head each. ``restarts=1`` is the single clustering of the same seed either way.
    """
    caller = "pseudo_labels"
    x = source_of(embeddings, caller=caller)
    n = len(x)
    if n < 2:
        raise InvalidInputError(f"{caller}: needs at least 2 rows, got {n}")
    k_given = k is not None
    k = choose_k(n) if k is None else check_int(k, caller=caller, name="k", low=2)
    if k > n:
        raise InvalidInputError(f"{caller}: k={k} is larger than the number of examples ({n})")
    if refine not in REFINE:
        raise InvalidInputError(f"{caller}: refine must be one of {REFINE}, got {refine!r}")
    neighbours = check_int(neighbours, caller=caller, name="neighbours", low=1)
    epochs = check_int(epochs, caller=caller, name="epochs", low=1)
    fit_rows = check_int(fit_rows, caller=caller, name="fit_rows", low=2)
    restarts = check_int(restarts, caller=caller, name="restarts", low=1)
    if combine not in COMBINE:
        raise InvalidInputError(f"{caller}: combine must be one of {COMBINE}, got {combine!r}")
    rng = as_rng(seed, caller=caller)
    if ids is None and hasattr(x, "ids"):
        ids = x.ids
    ids = check_ids(ids, n, caller=caller)
    seeds = [(seed_int(rng), seed_int(rng)) for _ in range(restarts)]  # (k-means, head) per restart
    meta: dict[str, Any] = {
        "k": k,
        "k_rule": "given" if k_given else f"choose_k: n / {ROWS_PER_CLUSTER} clipped to [{MIN_K}, {MAX_K}]",
        "refine": refine,
        "seed": seed if isinstance(seed, int) else None,
        "niter": niter,
        "max_points_per_centroid": max_points_per_centroid,
    }
    if encoder:
        meta["encoder"] = encoder
    eng = get_engine(engine)
    fit = nbr = None
    if refine == "none":
        meta["temperature"] = KMEANS_TEMPERATURE
    else:
        m = min(n, fit_rows)
        if neighbours >= m:
            raise InvalidInputError(f"{caller}: neighbours={neighbours} must be below the {m} rows it fits on")
        fit = normalize_rows(sample_rows(x, m, seed=seeds[0][1]), inplace=True)
        nbr = neighbour_table(fit, neighbours, seed=seeds[0][1])
        meta.update(neighbours=neighbours, epochs=epochs, fit_rows=m)
    runs = []
    for km_seed, head_seed in seeds:
        sample = normalize_rows(sample_rows(x, k * max_points_per_centroid, seed=km_seed), inplace=True)
        centroids = fit_centroids(
            sample, k=k, seed=km_seed, niter=niter, max_points_per_centroid=max_points_per_centroid
        )
        del sample
        if fit is None:
            parts = eng.map(kmeans_assign_chunk, x, {"centroids": centroids})
        else:
            init = _kmeans_assign(fit, centroids)[:, 0].astype(np.int64)
            head = fit_neighbour_head(fit, init, k=k, neighbours=neighbours, epochs=epochs, seed=head_seed, nbr=nbr)
            parts = eng.map(head_assign_chunk, x, head_state(head))
        runs.append((stack(parts, "label").astype(np.int64), stack(parts, "confidence").astype(np.float64)))
    del fit, nbr
    restart_labels = None
    if restarts == 1:
        labels, conf = runs[0]
    elif combine == "heads":
        labels, conf = runs[0]
        restart_labels = np.stack([r[0] for r in runs])
        meta.update(restarts=restarts, combine="heads")
    else:
        labels, conf, agree = consensus_labels(np.stack([r[0] for r in runs]), np.stack([r[1] for r in runs]), k)
        meta.update(restarts=restarts, combine="vote", consensus=CONSENSUS, mean_agreement=float(agree.mean()))
    counts = np.bincount(labels, minlength=k)
    meta["empty_clusters"] = int((counts == 0).sum())
    meta["mean_confidence"] = float(conf.mean())
    return PseudoLabels(ids=ids, labels=labels, confidence=conf, k=k, meta=meta, restart_labels=restart_labels)


def consensus_labels(labelings, confidences, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vote of R clusterings of the same N rows: ``labelings`` and ``confidences`` (R, N).

    Cluster numbers are arbitrary, so clusterings are compared after matching: the one-to-one map
    of one's clusters to another's that maximises the rows on which they agree (Hungarian assignment
    on their k x k overlap counts). The reference is the clustering that agrees most with all the
    others (the earliest on ties), so that one bad clustering cannot set the numbering; every
    clustering is matched to it, and each row takes the label most clusterings give it (a tie goes
    to the reference, then to the earliest). Returns ``(labels, confidence, agreement)``, each
    (N,): ``confidence`` is the mean over clusterings of each one's confidence where it voted for
    the winning label (0 where it did not), ``agreement`` the share that voted for it.
    """
    lab = np.asarray(labelings, dtype=np.int64)
    conf = np.asarray(confidences, dtype=np.float64)
    if lab.ndim != 2 or conf.shape != lab.shape:
        raise InvalidInputError(
            f"consensus_labels: labelings and confidences must be (R, N), got {lab.shape} and {conf.shape}"
        )
    if lab.size and (lab.min() < 0 or lab.max() >= k):
        raise InvalidInputError(f"consensus_labels: labels must be in [0, {k})")
    R = len(lab)
    together = np.zeros((R, R))
    for i in range(R):
        for j in range(i + 1, R):
            together[i, j] = together[j, i] = np.mean(_matched(lab[i], lab[j], k) == lab[j])
    ref = int(together.sum(axis=1).argmax())
    order = [ref] + [r for r in range(R) if r != ref]
    aligned = np.stack([lab[r] if r == ref else _matched(lab[r], lab[ref], k) for r in order])
    votes = np.stack([(aligned == aligned[r]).sum(axis=0) for r in range(R)])  # (R, N)
    winner = votes.argmax(axis=0)  # the reference, then the earliest, among the most voted
    labels = aligned[winner, np.arange(lab.shape[1])]
    agree = aligned == labels
    return labels, np.where(agree, conf[order], 0.0).mean(axis=0), agree.mean(axis=0)


def _matched(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """``a``'s labels renamed to ``b``'s by the one-to-one map that maximises their agreement."""
    from scipy.optimize import linear_sum_assignment

    overlap = np.zeros((k, k), dtype=np.int64)
    np.add.at(overlap, (a, b), 1)
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    to = np.empty(k, dtype=np.int64)
    to[rows] = cols
    return to[a]


def neighbour_table(x: np.ndarray, neighbours: int, *, seed: int) -> np.ndarray:
    """(n, neighbours) nearest rows of each normalised row of ``x`` by cosine (faiss), itself where short."""
    from selfprune.metrics.density import knn_graph

    _, nbr = knn_graph(x, neighbours, metric="cosine", index="auto", seed=seed, caller="pseudo_labels")
    return np.where(nbr < 0, np.arange(len(x))[:, None], nbr)


def _kmeans_assign(x: np.ndarray, centroids: np.ndarray, start: int = 0) -> np.ndarray:
    """(n, 2) float64: nearest centroid (first on ties) and its softmax share over all centroids.

    Row by row the same whatever the chunking (products in fixed row blocks; ``start``: the row
    number of ``x[0]``)."""
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    sims = by_row_blocks(lambda b: b @ c.T, x, start)
    lab = sims.argmax(axis=1)
    z = (sims - sims[np.arange(len(x)), lab][:, None]) / KMEANS_TEMPERATURE
    conf = 1.0 / np.exp(z.astype(np.float64)).sum(axis=1)
    return np.stack([lab.astype(np.float64), conf], axis=1)


def kmeans_assign_chunk(chunk: np.ndarray, lo: int, state) -> dict[str, np.ndarray]:
    """Chunk function: the k-means ``label`` and ``confidence`` of each row (``state["centroids"]``)."""
    out = _kmeans_assign(unit_rows(chunk, caller="pseudo_labels"), state["centroids"], lo)
    return {"label": out[:, 0].astype(np.int64), "confidence": out[:, 1]}


def head_state(head) -> dict[str, np.ndarray]:
    """The neighbour head's weights as arrays (the state a worker labels chunks with)."""
    sd = head.state_dict()
    names = {"w1": "1.weight", "b1": "1.bias", "w2": "3.weight", "b2": "3.bias"}
    return {key: sd[name].numpy() for key, name in names.items()}


def head_assign_chunk(chunk: np.ndarray, lo: int, state) -> dict[str, np.ndarray]:
    """Chunk function: the head's most likely cluster (``label``) and its probability of each row."""
    torch = require("torch", "torch")
    f = torch.nn.functional
    w = {k: torch.from_numpy(np.ascontiguousarray(state[k])) for k in ("w1", "b1", "w2", "b2")}

    def probs(b: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(b)
            return torch.softmax(f.linear(torch.relu(f.linear(x, w["w1"], w["b1"])), w["w2"], w["b2"]), dim=1).numpy()

    p = by_row_blocks(probs, unit_rows(chunk, caller="pseudo_labels"), lo)
    return {"label": p.argmax(axis=1).astype(np.int64), "confidence": p.max(axis=1).astype(np.float64)}


def fit_neighbour_head(
    x: np.ndarray,
    init: np.ndarray,
    *,
    k: int,
    neighbours: int = 20,
    epochs: int = 30,
    entropy_weight: float = 5.0,
    batch_size: int = 512,
    lr: float = 1e-3,
    seed: int = 0,
    nbr: np.ndarray | None = None,
):
    """Train the ``mlp`` classifier (D -> 256 -> k) as a head on normalised rows ``x`` (n, D); returns it.

    Loss per batch (SCAN): ``-mean log <p_i, p_j>`` for each anchor i and one of its
    ``neighbours`` nearest rows j, minus ``entropy_weight`` times the entropy of the batch's mean
    prediction (so that the head cannot put everything into one cluster). The head first learns the
    k-means assignment ``init`` for one epoch, so clusters start where k-means put them and the
    refinement moves only what the neighbours contradict. Deterministic under ``seed`` (CPU).
    ``nbr``: the rows' :func:`neighbour_table` when already computed (else found here).
    """
    torch = require("torch", "torch")
    from selfprune.evaluate.models import build_model
    from selfprune.evaluate.trainers import fit_minibatches

    if nbr is None:
        nbr = neighbour_table(x, neighbours, seed=seed)
    head = build_model("mlp", (x.shape[1],), k, seed=seed)  # D -> 256 -> k, weights from ``seed``
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    xt, nt, yt = torch.from_numpy(x), torch.from_numpy(nbr), torch.from_numpy(init)

    def batch_loss(logits, i, epoch):
        if epoch == 0:  # warm start on the k-means cells
            return torch.nn.functional.cross_entropy(logits, yt[i])
        j = nt[i, torch.randint(0, nt.shape[1], (len(i),), generator=gen)]
        pi, pj = torch.softmax(logits, 1), torch.softmax(head(xt[j]), 1)
        consistency = -torch.log((pi * pj).sum(1).clamp_min(1e-8)).mean()
        mean_p = pi.mean(0)
        neg_entropy = (mean_p * torch.log(mean_p.clamp_min(1e-8))).sum()
        return consistency + entropy_weight * neg_entropy

    fit_minibatches(head, opt, xt, batch_size=batch_size, generator=gen, epochs=epochs + 1, batch_loss=batch_loss)
    head.eval()
    return head


__all__ = ["PseudoLabels", "pseudo_labels", "choose_k", "consensus_labels", "fit_neighbour_head", "REFINE"]
