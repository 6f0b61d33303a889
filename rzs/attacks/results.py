"""The attacks' result table (one row per image and th) and its summaries.

Every attack in `rzs.attacks` returns a DataFrame with the columns of `COLUMNS`:

- `attack`, `strategy`: the attack ("pixel", "threshold", "fgsm", ...) and how it
  searched ("cmaes", "de", or "gradient").
- `image`: the row's position in the `images` passed to the attack.
- `th`: the attack's budget: pixels changed (pixel attack) or the largest change
  of a value on the 0-255 scale (threshold attack, FGSM, BIM, PGD); NaN for
  attacks without one (C&W L2, DeepFool).
- `true_label`, `target_label` (<NA> when untargeted), `original_label` (the
  model's prediction on the clean image), `adversarial_label`.
- `success`: the adversarial image is classified as anything but the true label
  (untargeted) or as the target label (targeted), decided once, from the
  scores the attack itself computed for the returned image (for the
  evolutionary attacks, in the generation's batch).
- `rescored_success`: the same decision from scoring the returned image again
  on its own; it differs from `success` only where batching changes the
  float32 scores of an image that sits on a decision boundary.
- `queries`: model evaluations the attack spent on the image: candidate images
  scored (pixel and threshold attacks) or gradient evaluations.
- `generations`: generations of the search (pixel and threshold attacks) or
  iterations (gradient attacks) the image used.
- `stop_reason`: why the image's attack ended: "success", "budget" (every
  generation or iteration used), "clean_misclassified" (untargeted: the clean
  image is already misclassified, nothing is searched), "clean_on_target"
  (targeted: the clean image is already the target class), or
  "converged:<criterion>" (the search's own convergence test, only when
  asked for, e.g. "converged:tolfun" for cma's flat-fitness stop).
- `l0`: pixel positions (height x width) where any channel changed; `l2`,
  `linf`: norms of the perturbation on the 0-255 scale.
- `true_probability_before`, `true_probability_after`: the model's probability
  of the true class on the clean and on the adversarial image (float32 softmax
  of the scores the attack computed).
"""

import dataclasses

import numpy as np
import pandas as pd

from rzs.attacks import model_calls

COLUMNS = [
    "attack",
    "strategy",
    "image",
    "th",
    "true_label",
    "target_label",
    "original_label",
    "adversarial_label",
    "success",
    "rescored_success",
    "queries",
    "generations",
    "stop_reason",
    "l0",
    "l2",
    "linf",
    "true_probability_before",
    "true_probability_after",
]


def perturbation_sizes(originals, adversarials):
    """L0, L2 and L-inf sizes of `adversarials - originals` on the 0-255 scale.

    Args:
        originals, adversarials: arrays of shape `(num_rows, height, width, channels)`.

    Returns:
        Tuple `(l0, l2, linf)` of arrays of shape `(num_rows,)`; `l0` counts pixel
        positions with any channel changed, matching the pixel attack's th.
    """
    difference = adversarials.astype("float64") - originals.astype("float64")
    flat = difference.reshape(len(difference), -1)
    l0 = np.count_nonzero(np.any(difference != 0, axis=-1).reshape(len(difference), -1), axis=1)
    return l0, np.linalg.norm(flat, axis=1), np.abs(flat).max(axis=1, initial=0.0)


def build_table(
    *,
    attack,
    strategy,
    image_indices,
    th,
    labels,
    target_labels,
    original_scores,
    adversarial_scores,
    rescored_scores,
    originals,
    adversarials,
    queries,
    generations,
    stop_reasons,
):
    """Assemble the result table; success is decided from `adversarial_scores`.

    Args:
        attack, strategy: names written to every row.
        image_indices: int array `(num_rows,)`, position of each row's image in the
            attacked batch.
        th: float array `(num_rows,)`, the budget of each row (NaN if none).
        labels: int array `(num_rows,)` of true labels.
        target_labels: int array `(num_rows,)`, or None for an untargeted attack.
        original_scores, adversarial_scores: float arrays `(num_rows, num_classes)`,
            the log-scale scores (`rzs.attacks.model_calls`) of the clean and of
            the adversarial image of each row, as the attack computed them.
        rescored_scores: float array `(num_rows, num_classes)`, the adversarial
            images scored again, or None when `adversarial_scores` already are
            the final scoring of the returned images.
        originals, adversarials: arrays `(num_rows, height, width, channels)`.
        queries, generations: int arrays `(num_rows,)`.
        stop_reasons: str array `(num_rows,)`.

    Returns:
        DataFrame with the columns of `COLUMNS`.
    """
    adversarial_labels = np.argmax(adversarial_scores, axis=1)
    rescored_labels = adversarial_labels if rescored_scores is None else np.argmax(rescored_scores, axis=1)
    if target_labels is None:
        success = adversarial_labels != labels
        rescored_success = rescored_labels != labels
        target_column = pd.array([pd.NA] * len(labels), dtype="Int64")
    else:
        success = adversarial_labels == target_labels
        rescored_success = rescored_labels == target_labels
        target_column = pd.array(target_labels, dtype="Int64")
    original_probabilities = model_calls.probabilities_from_scores(original_scores)
    adversarial_probabilities = model_calls.probabilities_from_scores(adversarial_scores)
    l0, l2, linf = perturbation_sizes(originals, adversarials)
    rows = np.arange(len(labels))
    return pd.DataFrame(
        {
            "attack": attack,
            "strategy": strategy,
            "image": np.asarray(image_indices, dtype="int64"),
            "th": np.asarray(th, dtype="float64"),
            "true_label": labels,
            "target_label": target_column,
            "original_label": np.argmax(original_scores, axis=1),
            "adversarial_label": adversarial_labels,
            "success": success,
            "rescored_success": rescored_success,
            "queries": np.asarray(queries, dtype="int64"),
            "generations": np.asarray(generations, dtype="int64"),
            "stop_reason": np.asarray(stop_reasons, dtype=object),
            "l0": l0,
            "l2": l2,
            "linf": linf,
            "true_probability_before": original_probabilities[rows, labels],
            "true_probability_after": adversarial_probabilities[rows, labels],
        },
        columns=COLUMNS,
    )


def summarize(table):
    """Attack accuracy per attack, strategy and th.

    The authors attack the first test images without filtering out those the model
    already gets wrong; the paper's attack accuracy is the share of all attacked
    images that end up misclassified. Both that and the share over the images
    the model classified correctly are given; the latter is the robustness
    outcome, the former also counts the model's clean errors.

    Two checks of the attack itself come with them: the share of failed rows
    that stopped before their budget (0 unless a convergence stop was asked
    for: a search that gave up early would make the model look more robust
    than it is) and the number of rows whose success re-scoring contradicts.

    Args:
        table: a result table (see `COLUMNS`) with one th per image, such as
            returned for a fixed `th` or a list of them. For a binary-search table
            (`th=None`) use `minimal_threshold` instead.

    Returns:
        DataFrame with one row per (attack, strategy, th) and the columns `images`,
        `attack_accuracy`, `correct_images`, `attack_accuracy_on_correct` (NaN
        when no image was classified correctly), `mean_queries`,
        `failed_stopped_early` (share of failed rows whose `stop_reason` is not
        "budget"; NaN when no row failed) and `rescoring_disagreements`.
    """
    frame = table.assign(correct=table["original_label"] == table["true_label"])
    frame["success_on_correct"] = frame["success"].astype("float64").where(frame["correct"])
    failed = ~frame["success"].astype(bool)
    frame["failed_stopped_early"] = (frame["stop_reason"] != "budget").astype("float64").where(failed)
    frame["rescoring_disagreement"] = frame["success"] != frame["rescored_success"]
    grouped = frame.groupby(["attack", "strategy", "th"], dropna=False, sort=True)
    summary = grouped.agg(
        images=("success", "size"),
        attack_accuracy=("success", "mean"),
        correct_images=("correct", "sum"),
        attack_accuracy_on_correct=("success_on_correct", "mean"),
        mean_queries=("queries", "mean"),
        failed_stopped_early=("failed_stopped_early", "mean"),
        rescoring_disagreements=("rescoring_disagreement", "sum"),
    )
    return summary.reset_index()


def minimal_threshold(table):
    """Smallest successful th per attacked image (NaN where no th succeeded).

    Args:
        table: a result table, typically from a binary search (`th=None`).

    Returns:
        DataFrame with columns `attack`, `strategy`, `image`, `true_label`,
        `original_label` and `minimal_th`.
    """
    keys = ["attack", "strategy", "image", "true_label", "original_label"]
    successful_th = table["th"].where(table["success"])
    return (
        table.assign(minimal_th=successful_th)
        .groupby(keys, sort=True)["minimal_th"]
        .min()
        .reset_index()
    )


@dataclasses.dataclass
class FinishedSearch:
    """One row of a search attack's table: an image at one th, and how its search ended."""

    image: int
    th: int
    queries: int
    stop_reason: str
    adversarial: np.ndarray  # the successful candidate, or the best one when the search failed
    scores: np.ndarray  # the scores the search saw for `adversarial`
    generations: int | None = None  # None: one candidate per generation, so it equals queries


def search_table(rows, *, attack, strategy, images, labels, target_labels, clean_scores, scores_model,
                 max_batch_size, return_images):
    """The result table of a search attack's finished rows (`FinishedSearch`), sorted by image and th.

    Success and the other columns come from the scores the search saw; the adversarial images
    are scored once more, together, only to check that decision (`rescored_success`).
    With `return_images`, also the uint8 adversarial images, one per row.
    """
    rows = sorted(rows, key=lambda row: (row.image, row.th))
    image_indices = np.array([row.image for row in rows])
    adversarial_images = np.stack([row.adversarial for row in rows])
    queries = np.array([row.queries for row in rows])
    table = build_table(
        attack=attack,
        strategy=strategy,
        image_indices=image_indices,
        th=np.array([row.th for row in rows], dtype="float64"),
        labels=labels[image_indices],
        target_labels=None if target_labels is None else target_labels[image_indices],
        original_scores=clean_scores[image_indices],
        adversarial_scores=np.stack([row.scores for row in rows]),
        rescored_scores=model_calls.predict_scores(scores_model, adversarial_images, max_batch_size),
        originals=images[image_indices],
        adversarials=adversarial_images,
        queries=queries,
        generations=np.array([row.queries if row.generations is None else row.generations for row in rows]),
        stop_reasons=np.array([row.stop_reason for row in rows], dtype=object),
    )
    if return_images:
        return table, adversarial_images.astype("uint8")
    return table
