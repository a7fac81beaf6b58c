"""Chapter 8 (metric learning): checks that say what is wrong, not just "False".

Every check compares with a property, a library (numpy, scipy, scikit-learn) or trashkit's
own helpers, never with a copy of the chapter's solution."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .core import call, close, ok, require

_DEMAND_CASES = ((60.0, 0.5, 4.0), (90.0, 0.1, 2.276), (45.0, 0.3, 16.0), (120.0, 0.2, 1.0))


def _logit_with_margin(angle_deg: float, m: float, s: float) -> float:
    """trashkit's own margin logit of a true class at ``angle_deg`` from its centre."""
    from ..models.arcface import margin_logits

    cos = torch.tensor([[math.cos(math.radians(angle_deg)), 0.0]], dtype=torch.float32)
    return float(margin_logits(cos, torch.tensor([0]), m, s)[0, 0])


def _demand(other_deg: float, m: float, s: float) -> float:
    """The angle at which the margin logit equals the wrong class's logit, found numerically
    (scipy's root finder on trashkit's margin_logits)."""
    from scipy.optimize import brentq

    wrong = s * math.cos(math.radians(other_deg))
    return brentq(lambda a: _logit_with_margin(a, m, s) - wrong, 0.0, other_deg)


def _diagnose_demand(got: float, other: float, m: float) -> str:
    """Name the usual slip behind a wrong answer."""
    slips = {
        "the wrong centre's own angle: without a margin that would be the answer; with it "
        "the true class must be closer": other,
        "the margin subtracted in radians from an angle in degrees": other - m,
        "the margin added: it makes the true class's angle count as larger, so the image "
        "must be closer, not farther": other + math.degrees(m),
        "an answer in radians; the question asks for degrees": math.radians(other) - m,
    }
    for why, value in slips.items():
        if close(got, value, rel=1e-4, abs_tol=1e-4):
            return f"you returned {why}"
    return (
        "find the angle theta at which s*cos(theta + m) equals s*cos(theta_other): "
        "cosine is decreasing on [0, pi]"
    )


def _at_angle(got, other: float, m: float, s: float) -> str:
    try:
        mine = _logit_with_margin(float(got), m, s)
    except (TypeError, ValueError):
        return ""
    wrong = s * math.cos(math.radians(other))
    return (
        f"at that angle (s = {s}) trashkit's margin logit is {mine:.4f} and the wrong "
        f"class's {wrong:.4f}, not equal; "
    )


def check_margin_demand(margin_demand) -> str:
    """``margin_demand(other_deg, m)``: the largest angle (degrees) between an image and its
    own centre at which its margin logit still reaches the logit of a wrong class
    ``other_deg`` degrees away. Checked against a numerical root of trashkit's
    ``margin_logits``; the scale ``s`` must not matter."""
    for other, m, s in _DEMAND_CASES:
        got = call(margin_demand, other, m, name="margin_demand")
        want = _demand(other, m, s)
        require(
            close(got, want, rel=1e-4, abs_tol=1e-3),
            f"margin_demand({other}, {m}) returned {got!r}: "
            f"{_at_angle(got, other, m, s)}{_diagnose_demand(float(got), other, m)}.",
        )
    return ok(
        f"margin_demand agrees with trashkit's margin_logits on {len(_DEMAND_CASES)} cases "
        f"(scales 1 to 16: the scale does not matter); with m = 0.5 an image 60 degrees from "
        f"a wrong centre must lie within {_demand(60.0, 0.5, 4.0):.2f} degrees of its own"
    )


def check_margin_prediction(loss_goes: str, prediction_changes: bool, measured: dict) -> str:
    """Predict before you run: the margin raises the *training loss* of a correctly
    classified image, but the model's *prediction* does not change (the margin lives in the
    loss; the network outputs s*cos without it)."""
    require(
        loss_goes in ("up", "down", "same"),
        f"loss_goes must be 'up', 'down' or 'same' (got {loss_goes!r})",
    )
    require(
        isinstance(prediction_changes, bool),
        f"prediction_changes must be True or False (got {prediction_changes!r})",
    )
    lines = [
        f"measured: loss {measured['loss_without']:.4f} without the margin, "
        f"{measured['loss_with']:.4f} with it; prediction "
        f"{'changed' if measured['prediction_changed'] else 'did not change'}"
    ]
    actual = "up" if measured["loss_with"] > measured["loss_without"] else "down"
    if loss_goes != actual:
        lines.append(
            f"the loss went {actual}, not {loss_goes}: the margin lowers the true "
            "class's logit (s*cos(theta + m) < s*cos(theta)), so its probability "
            "falls and -log p rises"
        )
    if prediction_changes != measured["prediction_changed"]:
        lines.append(
            "the prediction is model(x).argmax(): the network returns s*cos(theta) "
            "for every class in train and eval mode alike; the margin is applied "
            "only inside ArcFaceLoss, where the label is known"
        )
    require(len(lines) == 1, "; ".join(lines) + ".")
    return ok(lines[0] + " — as you predicted.")


def _unit(degrees) -> torch.Tensor:
    rad = torch.tensor([math.radians(d) for d in degrees])
    return torch.stack([rad.cos(), rad.sin()], dim=1)


def check_nearest_class_mean(nearest_class_mean) -> str:
    """``nearest_class_mean(train_vectors, train_labels, queries, n_classes)`` -> class per
    query: the class whose (re-normalised) mean training embedding has the largest cosine."""
    # 2-d unit vectors at these angles: class 1 is spread widely, so its mean is short (0.45)
    train = _unit([-5, 0, 5, 10, 90, 170, 265, 270, 275])
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    queries = _unit([50, 0, 130, 270, 80, 200])
    got = np.asarray(call(nearest_class_mean, train, labels, queries, 3, name="nearest_class_mean"))
    sums = torch.zeros(3, 2).index_add_(0, torch.as_tensor(labels), train)
    want = (queries @ F.normalize(sums, dim=1).T).argmax(1).numpy()
    require(
        got.shape == want.shape,
        f"nearest_class_mean returned shape {got.shape}, expected one class per query {want.shape}",
    )
    if not (got == want).all():
        raw = (queries @ (sums / 3).T).argmax(1).numpy()
        hint = (
            "your predictions match the cosine to the *un-normalised* means: a mean of "
            "unit vectors is shorter than 1 (0.45 for the widely spread class 1 here), so "
            "normalise it before comparing"
            if (raw == got).all()
            else "average the training vectors of each class, normalise each mean to "
            "length 1, and take the argmax of queries @ means.T"
        )
        require(
            False,
            f"for queries at 50, 0, 130, 270, 80, 200 degrees you predicted "
            f"{got.tolist()}, expected {want.tolist()}: {hint}.",
        )
    return ok(
        f"nearest class mean agrees on all {len(want)} queries (the query at 50 degrees "
        "belongs to the spread class 1 only once its mean is normalised)"
    )


def check_search_cost(macs_factor: float, latency_factor: float, measured: dict) -> str:
    """Predict before you run: going from ``n`` to ``10 n`` stored embeddings multiplies the
    brute-force search's MACs by exactly 10 (checked); its measured time usually by less at
    small ``n`` (fixed per-call overheads) and by about 10 once the search is a large matrix
    product. The time depends on the machine, so that part is explained, not graded."""
    require(
        close(macs_factor, measured["macs_ratio"], rel=0.05),
        f"your MACs factor {macs_factor} is off (measured x{measured['macs_ratio']:.1f}): "
        f"the search computes one {measured['dim']}-long dot product per stored vector, "
        "n x d MACs, so 10 times the vectors is 10 times the MACs.",
    )
    ratio = measured["time_ratio"]
    verdict = "close to" if 0.5 * ratio <= latency_factor <= 2 * ratio else "more than 2x away from"
    why = (
        "time grew more slowly than MACs: at this size a call is dominated by fixed costs "
        "(Python, dispatch, top-k), not by the multiply-accumulates"
        if ratio < 7
        else "time grew about as fast as MACs, or faster: the stored vectors "
        f"({measured['n_large'] * measured['dim'] * 4 / 1e6:.0f} MB of float32) outgrow a "
        "core's private caches (typically 0.5-2 MB), so every query streams them from a "
        "slower level of memory"
    )
    return ok(
        f"MACs x{measured['macs_ratio']:.0f} as predicted; your time factor "
        f"{latency_factor} is {verdict} the measured x{ratio:.1f} "
        f"({measured['n_small']:,} -> {measured['n_large']:,} stored): {why}. MACs "
        "predict time only loosely (chapter 2)."
    )


def check_keep_threshold(keep_threshold) -> str:
    """``keep_threshold(known_scores, keep)``: the largest threshold ``t`` such that at least
    the share ``keep`` of the known scores is ``>= t`` (those images stay known; the rest,
    below ``t``, are called unknown). Checked by its two properties on several score sets."""
    rng = np.random.default_rng(8)
    cases = [(np.array([0.9, 0.8, 0.7, 0.5]), 0.75), (np.array([0.9, 0.8, 0.7, 0.5]), 0.7)]
    cases += [(rng.uniform(0.2, 0.9, n), q) for n, q in ((20, 0.95), (101, 0.9), (7, 0.5))]
    for scores, keep in cases:
        t = float(call(keep_threshold, scores.copy(), keep, name="keep_threshold"))
        kept = float((scores >= t).mean())
        require(
            kept >= keep - 1e-12,
            f"keep_threshold(scores of {len(scores)} known images, keep={keep}) returned "
            f"{t:.4f}, which keeps only {kept:.0%} of them (>= {t:.4f}); at least {keep:.0%} "
            "must stay known"
            + (
                ": you returned the quantile at `keep`, which keeps the top 1 - keep"
                if close(t, np.quantile(scores, keep), rel=1e-9)
                else ""
            ),
        )
        above = scores[scores > t]
        nxt = float(above.min()) if len(above) else None
        require(
            nxt is None or float((scores >= nxt).mean()) < keep - 1e-12,
            f"keep_threshold(scores of {len(scores)} known images, keep={keep}) returned "
            f"{t:.4f}, which keeps {kept:.0%}; the next score up, {nxt}, would still keep at "
            f"least {keep:.0%}: the largest such threshold rejects more unknown images for "
            "the same promise",
        )
    return ok(
        f"keep_threshold keeps at least the promised share on {len(cases)} score sets and is "
        "the largest threshold that does (e.g. scores 0.9, 0.8, 0.7, 0.5 with keep 0.75 -> "
        "0.7)"
    )


#: the design task: at most this share of the training embeddings stored, and a test macro-F1
#: at least that of the talk's predictor (1-NN over all of them) minus this
DESIGN_SHARE = 0.1
DESIGN_LOSS = 0.0


def _gallery(vectors, labels, train, test, n_classes: int) -> tuple[torch.Tensor, np.ndarray]:
    """The design's gallery as unit vectors and labels, after the rules that need no model."""
    v = F.normalize(torch.as_tensor(vectors, dtype=torch.float32).reshape(len(labels), -1), dim=1)
    labels = np.asarray(labels, dtype=np.int64)
    n, budget = len(train), int(DESIGN_SHARE * len(train))
    require(len(v) == len(labels) > 0, "give one label per stored vector (and at least one)")
    require(
        v.shape[1] == train.vectors.shape[1],
        f"vectors must have {train.vectors.shape[1]} numbers each",
    )
    require(
        labels.min() >= 0 and labels.max() < n_classes,
        f"labels must be class indices 0..{n_classes - 1}",
    )
    require(
        len(v) <= budget,
        f"your gallery stores {len(v)} vectors; the budget is {budget} ({DESIGN_SHARE:.0%} of the "
        f"{n} training embeddings)",
    )
    require(
        float((v @ test.vectors.T).max()) < 1 - 1e-6,
        "a stored vector equals a test image's embedding: the test images may not be stored "
        "(build the gallery from training images, choose it with validation images)",
    )
    return v, labels


def check_design_gallery(
    vectors, labels, train, test, n_classes: int, k: int = 1, grade: bool = True
) -> dict:
    """Grade the design task by measuring it: a gallery of at most ``DESIGN_SHARE`` of the
    ``n`` training embeddings, predicted by a ``k``-NN vote over it, must reach the test
    macro-F1 of the office-hour talk's predictor, 1-NN over all ``n`` (minus
    ``DESIGN_LOSS``). The test images may not be stored. 5-NN over all ``n`` is measured and
    printed too (the stretch goal, not graded). Returns the measurement.
    ``grade=False`` (a smoke run's network, trained for a minute) prints the verdict on the
    F1 target instead of failing on it; every other condition is still enforced."""
    from .. import embeddings as em
    from ..metrics import macro_f1

    v, labels = _gallery(vectors, labels, train, test, n_classes)
    n, d = len(train), v.shape[1]
    f1 = lambda bank, kk: macro_f1(  # noqa: E731
        test.labels, em.knn_predict(test, bank, kk, n_classes), n_classes
    )
    talk, best, yours = f1(train, 1), f1(train, 5), f1(em.Embedded(v, labels), k)
    m = {"stored": len(v), "full stored": n, "search MACs": len(v) * d}
    m |= {"full search MACs": n * d, "test macro-F1": yours, "1-NN": talk, "5-NN": best}
    verdict = (
        f"measured on the {len(test)} test images: your {k}-NN over {len(v)} stored vectors "
        f"scores macro-F1 {yours:.3f}; over all {n} training embeddings 1-NN (the talk's "
        f"predictor) scores {talk:.3f} and 5-NN {best:.3f}"
    )
    if not grade and yours < talk - DESIGN_LOSS:
        print(f"✗ not graded: {verdict}")
        return m
    require(
        yours >= talk - DESIGN_LOSS,
        f"{verdict}: below the talk's predictor. Look at which classes lose, try other "
        "galleries and votes, and choose on the validation images",
    )
    stretch = "reached" if yours >= best - 0.02 else "not reached"
    ok(
        f"design accepted: {verdict}; {len(v) * d:,} search MACs per image instead of "
        f"{n * d:,}. Stretch goal (within 0.02 of 5-NN over all): {stretch}"
    )
    return m
