"""Embeddings and nearest-neighbour prediction: what a metric-learning head is for.

An ArcFace network (:class:`trashkit.models.arcface.ArcFaceNet`) maps an image to a unit
vector, its *embedding*. Three ways to turn embeddings into a class, all compared in
chapter 8 on the same test images:

* **nearest learned centre** - the head's own class centres (what ``model(x).argmax`` does);
* **nearest class mean** - the mean training embedding of each class, re-normalised: no
  learned head at all, so a class can be added by embedding a few of its images;
* **k nearest neighbours** - cosine to every stored training embedding, majority vote of the
  ``k`` most similar (``k = 1``: the single most similar stored embedding). It keeps all
  ``n x d`` stored vectors and searches them for every image, which costs time in a live
  service.

The search itself is a matrix product (brute force, exact) or an index from a library
(:func:`make_index`: faiss' exact ``IndexFlatIP`` or its approximate HNSW graph,
scikit-learn's ``NearestNeighbors``). An image none of the known classes fits is recognised
by a threshold on its best cosine (:func:`best_cosine`, :func:`threshold_sweep`,
:func:`choose_threshold`, :func:`unknown_scores`).

This module sits beside :mod:`trashkit.metrics`: it uses the data, models and complexity
layers only, never training, scoring, search or compression (the experiments that train
networks live in :mod:`trashkit.metric_learning`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .complexity import measure_latency
from .data import normalize_batch


@dataclass
class Embedded:
    """Unit-length embeddings (``n x d`` float32) and their labels (``-1`` where unknown)."""

    vectors: torch.Tensor
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> Embedded:
        """The rows where ``mask`` holds (a boolean array or row indices)."""
        idx = torch.as_tensor(np.flatnonzero(mask) if np.asarray(mask).dtype == bool else mask)
        return Embedded(self.vectors[idx], self.labels[idx.numpy()])

    def __add__(self, other: Embedded) -> Embedded:
        return Embedded(
            torch.cat([self.vectors, other.vectors]), np.concatenate([self.labels, other.labels])
        )


@torch.no_grad()
def embed(model: nn.Module, batches: Iterable, device: str | torch.device = "cpu") -> Embedded:
    """Embed every uint8 batch ``(x, y)`` with ``model.embedding`` in eval mode.

    Why eval mode: the embedding's BatchNorm must use its running statistics, so that an
    image's vector does not depend on which other images share its batch.
    """
    model.eval()
    vectors, labels = [], []
    for x, y in batches:
        e = model.embedding(normalize_batch(x.to(device)))
        vectors.append(F.normalize(e.float(), dim=1).cpu())
        labels.append(np.full(len(x), -1) if y is None else np.asarray(y))
    if not vectors:
        return Embedded(torch.zeros(0, 0), np.zeros(0, np.int64))
    return Embedded(torch.cat(vectors), np.concatenate(labels).astype(np.int64))


def learned_centres(model: nn.Module) -> torch.Tensor:
    """The head's class centres as unit vectors (``C x d``)."""
    return F.normalize(model.centres.weight.detach().float().cpu(), dim=1)


def class_means(train: Embedded, n_classes: int) -> torch.Tensor:
    """The re-normalised mean embedding of each class (``C x d``); a class with no
    embedding gets a zero row, which no image is ever nearest to by a positive cosine."""
    d = train.vectors.shape[1]
    sums = torch.zeros(n_classes, d).index_add_(0, torch.as_tensor(train.labels), train.vectors)
    return F.normalize(sums, dim=1)


def nearest_centre(queries: Embedded | torch.Tensor, centres: torch.Tensor) -> np.ndarray:
    """The class whose centre has the largest cosine with each query."""
    q = queries.vectors if isinstance(queries, Embedded) else queries
    return (q @ centres.T).argmax(1).numpy()


def vote(
    sims: torch.Tensor, ids: torch.Tensor, bank_labels: np.ndarray, n_classes: int
) -> np.ndarray:
    """Majority vote of the neighbours' labels; a tie goes to the class whose neighbours
    have the larger summed cosine.

    Why the tie-break: with an even ``k``, or several classes among the neighbours, counts
    often tie; the class whose neighbours are closer is the better guess, and the answer
    never depends on the order the index returned them in.
    """
    labels = torch.as_tensor(bank_labels)[ids]  # (n, k)
    counts = F.one_hot(labels, n_classes).sum(1)  # (n, C)
    closeness = torch.zeros(counts.shape).scatter_add_(1, labels, sims.float())
    leaders = counts == counts.max(1, keepdim=True).values
    return torch.where(leaders, closeness, float("-inf")).argmax(1).numpy()


class TorchIndex:
    """Exact cosine search by brute force: one ``queries @ bank.T`` product, then top-k.

    It is a ``Linear`` layer with one output per stored image: ``n x d`` MACs per query.
    """

    name = "torch brute force (exact)"

    def __init__(self, bank: torch.Tensor):
        self.bank = bank.contiguous()

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        sims = queries @ self.bank.T
        return sims.topk(min(k, self.bank.shape[0]), dim=1)


class FaissIndex:
    """faiss (Meta's similarity-search library): exact ``IndexFlatIP`` (inner product =
    cosine for unit vectors) or the approximate HNSW graph ``IndexHNSWFlat``."""

    def __init__(
        self, bank: torch.Tensor, kind: str = "flat", hnsw_m: int = 32, ef_search: int = 64
    ):
        import faiss

        x = np.ascontiguousarray(bank.numpy(), dtype=np.float32)
        if kind == "flat":
            self.index, self.name = faiss.IndexFlatIP(x.shape[1]), "faiss IndexFlatIP (exact)"
        else:
            self.index = faiss.IndexHNSWFlat(x.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efSearch = ef_search
            self.name = f"faiss HNSW (M={hnsw_m}, efSearch={ef_search}, approximate)"
        self.index.add(x)

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        sims, ids = self.index.search(np.ascontiguousarray(queries.numpy(), np.float32), k)
        return torch.from_numpy(sims), torch.from_numpy(ids).long()


class SklearnIndex:
    """scikit-learn's ``NearestNeighbors`` with the cosine metric (brute force: its trees do
    not help in 512 dimensions)."""

    name = "scikit-learn NearestNeighbors (brute, cosine)"

    def __init__(self, bank: torch.Tensor):
        from sklearn.neighbors import NearestNeighbors

        self.nn = NearestNeighbors(metric="cosine", algorithm="brute").fit(bank.numpy())
        self.size = bank.shape[0]

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        dist, ids = self.nn.kneighbors(queries.numpy(), n_neighbors=min(k, self.size))
        return torch.from_numpy(1 - dist).float(), torch.from_numpy(ids).long()


INDEXES = {
    "torch": TorchIndex,
    "faiss-flat": lambda b: FaissIndex(b, "flat"),
    "faiss-hnsw": lambda b: FaissIndex(b, "hnsw"),
    "sklearn": SklearnIndex,
}


def make_index(bank: torch.Tensor, kind: str = "torch"):
    """A search index over the unit vectors ``bank`` (see :data:`INDEXES`)."""
    if kind not in INDEXES:
        raise ValueError(f"unknown index {kind!r}: use one of {sorted(INDEXES)}")
    return INDEXES[kind](bank.float())


def knn_predict(
    queries: Embedded | torch.Tensor, bank: Embedded, k: int, n_classes: int, index=None
) -> np.ndarray:
    """The majority class of the ``k`` stored embeddings most similar (by cosine) to each
    query; ``index`` defaults to the exact brute-force search over ``bank``."""
    q = queries.vectors if isinstance(queries, Embedded) else queries
    index = index if index is not None else TorchIndex(bank.vectors)
    sims, ids = index.search(q, k)
    return vote(sims, ids, bank.labels, n_classes)


class GalleryNet(nn.Module):
    """An embedding network plus the stored embeddings as one ``Linear`` (no bias): its
    output is the cosine to every stored image, so top-k of it *is* the k-NN search, and
    the official MACs counter sees the search's ``n x d`` multiply-accumulates."""

    def __init__(self, model: nn.Module, bank: torch.Tensor):
        super().__init__()
        self.model = model
        self.gallery = nn.Linear(bank.shape[1], bank.shape[0], bias=False)
        with torch.no_grad():
            self.gallery.weight.copy_(bank)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gallery(self.model.embedding(x))


def three_predictors(
    model: nn.Module, train: Embedded, test: Embedded, n_classes: int, k: int = 5
) -> dict[str, np.ndarray]:
    """Predictions of the three rules of the module docstring on the same test images."""
    return {
        "nearest learned centre": nearest_centre(test, learned_centres(model)),
        "nearest class mean": nearest_centre(test, class_means(train, n_classes)),
        f"{k} nearest neighbours": knn_predict(test, train, k, n_classes),
    }


def add_class(centres: torch.Tensor, new: Embedded | torch.Tensor) -> torch.Tensor:
    """Centres with one more row: the re-normalised mean of the new class's embeddings.

    This is the whole "training" of a new class for a nearest-centre classifier: embed a
    few of its images, average. No other centre moves, so only images whose embedding is
    now closer to the new centre than to their old one change their prediction.
    """
    v = new.vectors if isinstance(new, Embedded) else new
    return torch.cat([centres, F.normalize(v.mean(0, keepdim=True), dim=1)])


def search_latency(
    kind: str,
    n_stored: int,
    dim: int = 512,
    k: int = 5,
    queries: int = 200,
    seed: int = 0,
    threads: int | None = None,
) -> dict:
    """Median / p90 milliseconds to find the ``k`` nearest of one query (batch 1) among
    ``n_stored`` random unit vectors, the index's build time, and its recall@k against the
    exact search (1.0 for the exact kinds). ``threads``: torch's and faiss' thread count for
    the timing (restored after); None keeps what is set.

    Random vectors are enough to time the exact searches (their cost does not depend on the
    values); for an approximate index they are the hard case (no clusters to exploit), so
    its recall here is a floor.
    """
    g = torch.Generator().manual_seed(seed)
    bank = F.normalize(torch.randn(n_stored, dim, generator=g), dim=1)
    q = F.normalize(torch.randn(queries, dim, generator=g), dim=1)
    make_index(bank[:2], kind)  # imports the library outside the timed build
    t0 = time.perf_counter()
    index = make_index(bank, kind)
    build = time.perf_counter() - t0
    with _faiss_threads(threads if kind.startswith("faiss") else None):
        lat = measure_latency(
            lambda x: index.search(x, k), q[:1], warmup=10, runs=queries, threads=threads
        )
    with torch.inference_mode():
        found = index.search(q, k)[1].numpy()
        exact = (q @ bank.T).topk(min(k, n_stored), dim=1).indices.numpy()
    return {
        "index": kind,
        "name": index.name,
        "n_stored": n_stored,
        "dim": dim,
        "median_ms": lat.median_ms,
        "p90_ms": lat.p90_ms,
        "build_s": build,
        "recall_at_k": recall_at_k(found, exact),
        "macs_per_query": n_stored * dim,
    }


@contextmanager
def _faiss_threads(threads: int | None):
    """faiss' OpenMP thread count set for a block, then restored (None: unchanged)."""
    if threads is None:
        yield
        return
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact ``k`` nearest neighbours an approximate search also returned."""
    hits = [len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx, exact)]
    return float(sum(hits) / max(1, exact.size))


# --- a new class without retraining ----------------------------------------------------------


def new_class_scores(pred: np.ndarray, true: np.ndarray, new_label: int) -> dict:
    """The new class's recall and precision, and the old classes' macro-F1 (labels below
    ``new_label``), on the same predictions.

    Why both: a new class is only useful if it is found (recall) *and* if it does not steal
    images of the classes that worked before (their F1 falls when it does).
    """
    from sklearn.metrics import f1_score

    pred, true = np.asarray(pred), np.asarray(true)
    is_new, said_new = true == new_label, pred == new_label
    return {
        "new_recall": float((pred[is_new] == new_label).mean()) if is_new.any() else 0.0,
        "new_precision": float(is_new[said_new].mean()) if said_new.any() else 0.0,
        "others_macro_f1": float(
            f1_score(true, pred, labels=list(range(new_label)), average="macro", zero_division=0)
        ),
    }


@torch.no_grad()
def penultimate(
    model: nn.Module, batches: Iterable, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, np.ndarray]:
    """The inputs of a softmax network's last ``Linear`` (its features) and the labels."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    store: list[torch.Tensor] = []
    hook = last.register_forward_hook(lambda m, inp, out: store.append(inp[0].detach().cpu()))
    model.eval()
    labels = []
    try:
        for x, y in batches:
            model(normalize_batch(x.to(device)))
            labels.append(np.asarray(y))
    finally:
        hook.remove()
    return torch.cat(store), np.concatenate(labels).astype(np.int64)


# --- an image of no known class --------------------------------------------------------------


def best_cosine(queries: Embedded | torch.Tensor, stored: torch.Tensor) -> np.ndarray:
    """The largest cosine of each query with any row of ``stored`` (unit vectors: the learned
    centres, the class means or every training embedding): how well its best match fits.

    A low best cosine says "none of these": the score an "unknown" threshold is put on.
    """
    q = queries.vectors if isinstance(queries, Embedded) else queries
    return (q @ stored.T).max(1).values.numpy()


def threshold_sweep(known: np.ndarray, unknown: np.ndarray) -> dict[str, np.ndarray]:
    """Every distinct way a threshold ``t`` splits these scores, an image being called
    "unknown" when its score is below ``t``: ``threshold`` (ascending), ``precision`` and
    ``recall`` of "unknown", and ``known_rejected``, the share of known images called unknown.

    The thresholds lie halfway between neighbouring distinct scores, plus one below the
    smallest (nothing flagged: precision counts as 1) and one above the largest (everything
    flagged), so each threshold is as far as possible from the images it separates.
    """
    known, unknown = np.sort(np.asarray(known, float)), np.sort(np.asarray(unknown, float))
    if not len(known) or not len(unknown):
        raise ValueError("a threshold sweep needs scores of known and of unknown images")
    u = np.unique(np.concatenate([known, unknown]))
    t = np.concatenate([[u[0] - 1e-6], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-6]])
    tp = np.searchsorted(unknown, t, side="left")  # unknown images scoring below t
    fp = np.searchsorted(known, t, side="left")  # known images scoring below t
    flagged = tp + fp
    return {
        "threshold": t,
        "precision": np.where(flagged > 0, tp / np.maximum(flagged, 1), 1.0),
        "recall": tp / len(unknown),
        "known_rejected": fp / len(known),
    }


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    total = precision + recall
    return np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)


def choose_threshold(known: np.ndarray, unknown: np.ndarray) -> float:
    """The threshold of :func:`threshold_sweep` with the best F1 of "unknown" on these scores
    (the smallest such threshold on a tie: fewer known images rejected). Give it validation
    scores only: a threshold chosen on the test images makes their score optimistic."""
    sweep = threshold_sweep(known, unknown)
    return float(sweep["threshold"][int(np.argmax(_f1(sweep["precision"], sweep["recall"])))])


def unknown_scores(known: np.ndarray, unknown: np.ndarray, threshold: float) -> dict:
    """Precision, recall and F1 of "unknown" (score below ``threshold``) on these scores, and
    the share of known images it rejects."""
    known, unknown = np.asarray(known), np.asarray(unknown)
    tp, fp = int((unknown < threshold).sum()), int((known < threshold).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / len(unknown) if len(unknown) else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": float(_f1(np.array(precision), np.array(recall))),
        "known_rejected": fp / len(known) if len(known) else 0.0,
    }
