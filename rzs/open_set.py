"""Open-set detection scores of a leave-one-out model: does it tell the unseen class apart?

Leaving a class out of training is the open-set setting: the excluded class's test images are
out-of-distribution (OOD) for the leave-one-out model C_-i, the test images of the classes it
was trained on are in-distribution (ID). Every score here is "higher = more in-distribution",
and the detection metrics treat ID as the positive class, as OpenOOD v1.5 does:

- AUROC: the probability that a random ID image scores above a random OOD image (ties count
  one half), i.e. the area under the ROC curve with ID positive.
- FPR at 95% TPR: the share of OOD images that score at or above the threshold that keeps 95%
  of the ID images (the first point of the ROC curve whose TPR reaches 0.95).

Scores from probabilities p (rows of an `(num_images, num_classes)` array): maximum softmax
probability, negative entropy and GEN (Liu et al., CVPR 2023); from logits z, where the model
exposes them: energy (T log sum_j exp(z_j / T), Liu et al., NeurIPS 2020) and the maximum
logit.
"""

import numpy as np
from scipy import special, stats

TRUE_POSITIVE_RATE = 0.95
# GEN's defaults in its paper: gamma = 0.1 over the top M = 100 classes (every class here).
GEN_GAMMA = 0.1
GEN_TOP_CLASSES = 100


def maximum_softmax_probability(probabilities):
    """max_j p_j per image; `(num_images, num_classes)` -> `(num_images,)`."""
    return _check_scores_input(probabilities, "probabilities").max(axis=1)


def negative_entropy(probabilities):
    """sum_j p_j log p_j per image (0 log 0 = 0): higher is more confident."""
    probabilities = _check_scores_input(probabilities, "probabilities")
    return -special.entr(probabilities).sum(axis=1)


def generalized_entropy(probabilities, gamma=GEN_GAMMA, top_classes=GEN_TOP_CLASSES):
    """GEN's score, -sum_{j in top M} p_j^gamma (1 - p_j)^gamma, per image.

    The sum runs over the `top_classes` largest probabilities of each image (all of them when
    there are fewer classes). Higher is more in-distribution.
    """
    probabilities = _check_scores_input(probabilities, "probabilities")
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must be in (0, 1), received {gamma!r}.")
    top = np.sort(probabilities, axis=1)[:, ::-1][:, :top_classes]
    return -np.sum(top**gamma * (1 - top) ** gamma, axis=1)


def energy_score(logits, temperature=1.0):
    """T log sum_j exp(z_j / T) per image (the negative free energy): higher is more ID."""
    logits = _check_scores_input(logits, "logits", probabilities=False)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, received {temperature!r}.")
    return temperature * special.logsumexp(logits / temperature, axis=1)


def maximum_logit(logits):
    """max_j z_j per image."""
    return _check_scores_input(logits, "logits", probabilities=False).max(axis=1)


def auroc(in_distribution_scores, out_of_distribution_scores):
    """Area under the ROC curve, in-distribution positive.

        AUROC = (1 / (n_in n_out)) sum_{a in ID} sum_{b in OOD} [s_a > s_b] + [s_a = s_b] / 2

    computed from ranks (the Mann-Whitney U statistic divided by n_in n_out).

    Args:
        in_distribution_scores: array `(n_in,)`, higher = more in-distribution.
        out_of_distribution_scores: array `(n_out,)`.

    Returns:
        float in [0, 1]; 1 when every ID image scores above every OOD image.
    """
    inside, outside = _check_pair(in_distribution_scores, out_of_distribution_scores)
    ranks = stats.rankdata(np.concatenate([inside, outside]))
    rank_sum = ranks[: len(inside)].sum()
    u_statistic = rank_sum - len(inside) * (len(inside) + 1) / 2
    return float(u_statistic / (len(inside) * len(outside)))


def fpr_at_tpr(in_distribution_scores, out_of_distribution_scores, tpr=TRUE_POSITIVE_RATE):
    """Share of OOD images accepted at the threshold that accepts `tpr` of the ID images.

    The threshold is the largest t with |{a in ID: s_a >= t}| >= tpr n_in (the first point of
    the ROC curve whose true-positive rate reaches `tpr`); the result is
    |{b in OOD: s_b >= t}| / n_out.

    Args:
        in_distribution_scores: array `(n_in,)`, higher = more in-distribution.
        out_of_distribution_scores: array `(n_out,)`.
        tpr: the true-positive rate in (0, 1].

    Returns:
        float in [0, 1]; 0 for a perfect detector.
    """
    inside, outside = _check_pair(in_distribution_scores, out_of_distribution_scores)
    if not 0 < tpr <= 1:
        raise ValueError(f"tpr must be in (0, 1], received {tpr!r}.")
    accepted = int(np.ceil(tpr * len(inside) - 1e-9))
    threshold = np.sort(inside)[::-1][accepted - 1]
    return float(np.mean(outside >= threshold))


def _check_scores_input(values, name, probabilities=True):
    values = np.asarray(values, dtype="float64")
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] < 2:
        raise ValueError(
            f"Expected `{name}` of shape (num_images, num_classes) with at least one image and "
            f"two classes. Received: {name}.shape={values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"`{name}` must be finite. Received non-finite values.")
    if probabilities and (values.min() < 0 or values.max() > 1):
        raise ValueError(
            f"Expected `{name}` in [0, 1]. Received values in [{values.min()}, {values.max()}]."
        )
    return values


def _check_pair(inside, outside):
    inside = np.asarray(inside, dtype="float64").ravel()
    outside = np.asarray(outside, dtype="float64").ravel()
    for name, values in (("in_distribution_scores", inside), ("out_of_distribution_scores", outside)):
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"`{name}` must be a non-empty array of finite scores. Received: {values!r}")
    return inside, outside
