"""White-box gradient attacks: FGSM, BIM, PGD (L-inf), Carlini-Wagner L2 and DeepFool.

Gradients are taken with `tf.GradientTape` with respect to the raw pixels in
[0, 255], through the whole model and so through its own preprocessing; these
attacks therefore need the TensorFlow backend (the evolutionary attacks do not).

Every gradient is taken in float32 through the model's log-scale scores
(`rzs.attacks.model_calls.scoring_model`): its logits where it ends in a
softmax layer, its clipped log-probabilities otherwise (CapsNet). The
cross-entropy is taken from them with a log-softmax, so its gradient does not
vanish when the true class's probability rounds to 1; the margin loss and
C&W and DeepFool use only differences between two classes' scores, which are
the same from logits and from log-probabilities.

Budgets follow the usual [0, 1] convention (eps 8/255 is 8 on the 0-255 scale).
The adversarial images are real-valued in [0, 255]; they are not rounded to
8-bit values, as in IBM ART, which the authors used.
"""

import numpy as np
import tensorflow as tf

from rzs.attacks import model_calls, validation
from rzs.attacks.results import build_table

LOSSES = ("cross_entropy", "margin")


def fgsm(
    model,
    images,
    labels,
    eps=8 / 255,
    target_labels=None,
    batch_size=256,
    return_images=False,
    loss="cross_entropy",
):
    """Fast gradient sign method (Goodfellow et al. 2015), L-inf.

    One step of size eps along the sign of the gradient of the cross-entropy of
    the true class (away from it) or of the target class (towards it).

    Args:
        model: Keras model, float32 raw pixels in [0, 255] in, class
            probabilities out (docs/CONTRACTS.md).
        images: array `(num_images, height, width, channels)`, pixels in [0, 255].
        labels: int array `(num_images,)`, the true classes.
        eps: largest change of a value, on the [0, 1] scale.
        target_labels: int array `(num_images,)` for a targeted attack, or None.
        batch_size: images per gradient computation.
        return_images: also return the adversarial images.
        loss: the loss whose gradient sign is followed: "cross_entropy" (of
            the true or target class, from the logits, as in IBM ART) or
            "margin" (`s_y - max_{j != y} s_j` of the log-scale scores s,
            targeted: the mirror).

    Returns:
        The result table (`rzs.attacks.results.COLUMNS`), one row per image with
        `th = eps * 255`; with `return_images=True` the tuple
        `(table, adversarial_images)`, float32 `(num_images, height, width, channels)`.
    """
    return _linf_attack(
        "fgsm",
        model,
        images,
        labels,
        eps=eps,
        step_size=eps,
        iterations=1,
        random_start=False,
        seed=0,
        target_labels=target_labels,
        batch_size=batch_size,
        return_images=return_images,
        loss=loss,
    )


def bim(
    model,
    images,
    labels,
    eps=8 / 255,
    step_size=2 / 255,
    iterations=20,
    target_labels=None,
    batch_size=256,
    return_images=False,
    loss="cross_entropy",
):
    """Basic iterative method (Kurakin et al. 2017): PGD from the clean image.

    Args:
        step_size: size of each signed-gradient step, on the [0, 1] scale.
        iterations: number of steps.
        model, images, labels, eps, target_labels, batch_size, return_images,
        loss: as in `fgsm`.

    Returns:
        As in `fgsm`; `queries` is `iterations` per image.
    """
    return _linf_attack(
        "bim",
        model,
        images,
        labels,
        eps=eps,
        step_size=step_size,
        iterations=iterations,
        random_start=False,
        seed=0,
        target_labels=target_labels,
        batch_size=batch_size,
        return_images=return_images,
        loss=loss,
    )


def pgd(
    model,
    images,
    labels,
    eps=8 / 255,
    step_size=2 / 255,
    iterations=20,
    random_start=False,
    seed=0,
    target_labels=None,
    batch_size=256,
    return_images=False,
    loss="cross_entropy",
):
    """Projected gradient descent (Madry et al. 2018), L-inf.

    Signed-gradient steps, each followed by projection onto the eps-ball
    around the clean image and onto [0, 255].

    Args:
        random_start: start from a uniformly random point of the eps-ball
            instead of the clean image.
        seed: int >= 0 for the random start.
        model, images, labels, eps, step_size, iterations, target_labels,
        batch_size, return_images, loss: as in `bim`.

    Returns:
        As in `fgsm`; `queries` is `iterations` per image.
    """
    return _linf_attack(
        "pgd",
        model,
        images,
        labels,
        eps=eps,
        step_size=step_size,
        iterations=iterations,
        random_start=random_start,
        seed=seed,
        target_labels=target_labels,
        batch_size=batch_size,
        return_images=return_images,
        loss=loss,
    )


def carlini_wagner_l2(
    model,
    images,
    labels,
    target_labels=None,
    confidence=0.0,
    learning_rate=0.01,
    binary_search_steps=10,
    max_iterations=100,
    initial_const=0.01,
    batch_size=256,
    return_images=False,
):
    """Carlini-Wagner L2 attack (Carlini & Wagner 2017).

    Minimises `||x' - x||_2^2 + c * max(Z_true - max_{j != true} Z_j + confidence, 0)`
    (targeted: `max(max_{j != target} Z_j - Z_target + confidence, 0)`) on the
    [0, 1] scale with Adam over `x' = (tanh(w) + 1) / 2`, and binary-searches c
    per image: c grows tenfold until an attack succeeds, then bisects. The
    defaults are the IBM ART values of the authors' code; ART itself optimises
    by gradient steps with a line search instead of Adam.

    Args:
        confidence: margin kappa the adversarial class must win by (logit units).
        learning_rate: Adam learning rate on w.
        binary_search_steps: number of values of c tried per image.
        max_iterations: Adam steps per value of c.
        initial_const: first value of c.
        model, images, labels, target_labels, batch_size, return_images: as in `fgsm`.

    Returns:
        As in `fgsm`, with `th` NaN; each row holds the smallest successful
        perturbation found, or the clean image when none succeeded. `queries` is
        `binary_search_steps * max_iterations` per image.
    """
    images, labels, target_labels = _check_common(model, images, labels, target_labels, batch_size)
    confidence = validation.check_non_negative_number(confidence, "confidence")
    learning_rate = validation.check_positive_number(learning_rate, "learning_rate")
    binary_search_steps = validation.check_positive_integer(
        binary_search_steps, "binary_search_steps"
    )
    max_iterations = validation.check_positive_integer(max_iterations, "max_iterations")
    initial_const = validation.check_positive_number(initial_const, "initial_const")
    targeted = target_labels is not None
    objective_labels = target_labels if targeted else labels
    scores_model = model_calls.scoring_model(model)
    adam_step = _make_carlini_wagner_step(scores_model, targeted, confidence, learning_rate)

    adversarials = images.copy()
    for start in range(0, len(images), batch_size):
        batch = slice(start, start + batch_size)
        adversarials[batch] = _carlini_wagner_batch(
            adam_step,
            images[batch],
            objective_labels[batch],
            binary_search_steps,
            max_iterations,
            initial_const,
        )
    queries = np.full(len(images), binary_search_steps * max_iterations)
    return _table(
        "carlini_wagner_l2",
        scores_model,
        images,
        adversarials,
        labels,
        target_labels,
        th=np.nan,
        queries=queries,
        batch_size=batch_size,
        return_images=return_images,
    )


def deepfool(
    model,
    images,
    labels,
    max_iterations=100,
    overshoot=0.02,
    batch_size=256,
    return_images=False,
):
    """DeepFool (Moosavi-Dezfooli et al. 2016), untargeted, L2.

    Each iteration linearises the model around the current image and steps to
    the nearest linearised decision boundary between the true class and any
    other; the accumulated step is scaled by `1 + overshoot` to cross it.
    Images stop as soon as they are misclassified.

    Args:
        max_iterations: most iterations per image (the authors' ART value 100).
        overshoot: relative overshoot of the accumulated perturbation (the
            DeepFool paper's 0.02).
        model, images, labels, batch_size, return_images: as in `fgsm`.

    Returns:
        As in `fgsm`, with `th` NaN; `queries` counts each image's iterations.
    """
    images, labels, _ = _check_common(model, images, labels, None, batch_size)
    max_iterations = validation.check_positive_integer(max_iterations, "max_iterations")
    overshoot = validation.check_non_negative_number(overshoot, "overshoot")
    scores_model = model_calls.scoring_model(model)
    log_probabilities_and_jacobian = _make_jacobian_function(scores_model)

    adversarials = images.copy()
    queries = np.zeros(len(images), dtype="int64")
    for start in range(0, len(images), batch_size):
        batch = slice(start, start + batch_size)
        adversarials[batch], queries[batch] = _deepfool_batch(
            log_probabilities_and_jacobian, images[batch], labels[batch], max_iterations, overshoot
        )
    # DeepFool stops an image once it is misclassified: before its first
    # iteration when the clean image already is.
    stop_reasons = np.where(
        queries == 0,
        "clean_misclassified",
        np.where(queries < max_iterations, "success", "budget"),
    ).astype(object)
    return _table(
        "deepfool",
        scores_model,
        images,
        adversarials,
        labels,
        None,
        th=np.nan,
        queries=queries,
        batch_size=batch_size,
        return_images=return_images,
        stop_reasons=stop_reasons,
    )


def _check_common(model, images, labels, target_labels, batch_size):
    """Checked images (float32), labels and target labels of a gradient attack."""
    images = validation.check_images(images, model, integer_valued=False)
    num_classes = model.output_shape[-1]
    labels = validation.check_labels(labels, len(images), num_classes)
    target_labels = validation.check_target_labels(target_labels, labels, num_classes)
    validation.check_positive_integer(batch_size, "batch_size")
    return images, labels, target_labels


def _linf_attack(
    attack,
    model,
    images,
    labels,
    *,
    eps,
    step_size,
    iterations,
    random_start,
    seed,
    target_labels,
    batch_size,
    return_images,
    loss,
):
    """FGSM, BIM and PGD: signed-gradient steps projected onto the eps-ball."""
    images, labels, target_labels = _check_common(model, images, labels, target_labels, batch_size)
    eps = validation.check_positive_number(eps, "eps")
    if eps > 1:
        raise ValueError(f"Expected `eps` on the [0, 1] scale, at most 1. Received: eps={eps!r}")
    step_size = validation.check_positive_number(step_size, "step_size")
    iterations = validation.check_positive_integer(iterations, "iterations")
    seed = validation.check_positive_integer(seed, "seed", minimum=0)
    validation.check_choice(loss, "loss", LOSSES)
    targeted = target_labels is not None
    objective_labels = target_labels if targeted else labels
    # Untargeted steps climb the true class's loss, targeted ones descend the target's.
    step_pixels = (-1.0 if targeted else 1.0) * step_size * 255.0
    eps_pixels = eps * 255.0
    scores_model = model_calls.scoring_model(model)
    loss_gradient = _make_loss_gradient(scores_model, loss)
    rng = np.random.default_rng(seed)

    adversarials = images.copy()
    for start in range(0, len(images), batch_size):
        batch = slice(start, start + batch_size)
        originals = images[batch]
        objective = tf.constant(objective_labels[batch])
        lowest = np.maximum(originals - eps_pixels, 0.0)
        highest = np.minimum(originals + eps_pixels, 255.0)
        current = originals
        if random_start:
            noise = rng.uniform(-eps_pixels, eps_pixels, size=originals.shape)
            current = np.clip(originals + noise, lowest, highest).astype("float32")
        for _ in range(iterations):
            gradient = loss_gradient(tf.constant(current), objective).numpy()
            current = np.clip(current + step_pixels * np.sign(gradient), lowest, highest)
        adversarials[batch] = current

    return _table(
        attack,
        scores_model,
        images,
        adversarials,
        labels,
        target_labels,
        th=eps_pixels,
        queries=np.full(len(images), iterations),
        batch_size=batch_size,
        return_images=return_images,
    )


def _carlini_wagner_batch(
    adam_step, images, objective_labels, binary_search_steps, max_iterations, initial_const
):
    """Smallest successful C&W image found for each of `images` (the clean one if none).

    Args:
        adam_step: function from `_make_carlini_wagner_step`.
        images: float32 array `(batch, height, width, channels)` in [0, 255].
        objective_labels: int array `(batch,)`, true (untargeted) or target labels.
        binary_search_steps, max_iterations, initial_const: see `carlini_wagner_l2`.

    Returns:
        float32 array `(batch, height, width, channels)` in [0, 255].
    """
    originals = tf.constant(images / 255.0)
    objective = tf.constant(objective_labels)
    # Shrunk slightly so that pixels at 0 or 255 get a finite arctanh.
    initial_w = np.arctanh((2.0 * images / 255.0 - 1.0) * 0.999999).astype("float32")
    adversarials = images.copy()
    const = np.full(len(images), initial_const, dtype="float32")
    lower_const = np.zeros_like(const)
    upper_const = np.full_like(const, np.inf)
    best_distance = np.full(len(images), np.inf, dtype="float32")
    for _ in range(binary_search_steps):
        w = tf.constant(initial_w)
        first_moment = tf.zeros_like(w)
        second_moment = tf.zeros_like(w)
        succeeded = np.zeros(len(images), dtype=bool)
        for iteration in range(1, max_iterations + 1):
            w, first_moment, second_moment, candidates, distance, success = adam_step(
                w,
                first_moment,
                second_moment,
                tf.constant(float(iteration)),
                originals,
                objective,
                tf.constant(const),
            )
            distance, success = distance.numpy(), success.numpy()
            improved = success & (distance < best_distance)
            best_distance[improved] = distance[improved]
            adversarials[improved] = candidates.numpy()[improved] * 255.0
            succeeded |= success
        upper_const = np.where(succeeded, np.minimum(upper_const, const), upper_const)
        lower_const = np.where(succeeded, lower_const, np.maximum(lower_const, const))
        bisected = (lower_const + upper_const) / 2.0
        const = np.where(np.isinf(upper_const), const * 10.0, bisected).astype("float32")
    return adversarials


def _deepfool_batch(log_probabilities_and_jacobian, images, labels, max_iterations, overshoot):
    """DeepFool images and iterations used for each of `images`.

    Args:
        log_probabilities_and_jacobian: function from `_make_jacobian_function`.
        images: float32 array `(batch, height, width, channels)` in [0, 255].
        labels: int array `(batch,)`.
        max_iterations, overshoot: see `deepfool`.

    Returns:
        Tuple of a float32 array `(batch, height, width, channels)` and an int
        array `(batch,)`.
    """
    total_step = np.zeros_like(images)
    current = images.copy()
    queries = np.zeros(len(images), dtype="int64")
    active = np.arange(len(images))
    for _ in range(max_iterations):
        log_probabilities, jacobian = log_probabilities_and_jacobian(tf.constant(current[active]))
        log_probabilities = log_probabilities.numpy()
        still_correct = np.argmax(log_probabilities, axis=1) == labels[active]
        active = active[still_correct]
        if len(active) == 0:
            break
        queries[active] += 1
        rows = np.arange(len(active))
        active_labels = labels[active]
        log_probabilities = log_probabilities[still_correct]
        jacobian = jacobian.numpy()[still_correct]
        # Margins and gradients of every class relative to the true class.
        margins = log_probabilities - log_probabilities[rows, active_labels][:, None]
        directions = jacobian - jacobian[rows, active_labels][:, None]
        num_classes = margins.shape[1]
        norms = np.linalg.norm(directions.reshape(len(active), num_classes, -1), axis=2)
        distances = np.abs(margins) / (norms + 1e-8)
        distances[rows, active_labels] = np.inf
        nearest = np.argmin(distances, axis=1)
        # The step onto the linearised boundary, nudged by 1e-4 to cross it.
        scale = (np.abs(margins[rows, nearest]) + 1e-4) / (norms[rows, nearest] ** 2 + 1e-8)
        total_step[active] += scale[:, None, None, None] * directions[rows, nearest]
        overshot = images[active] + (1.0 + overshoot) * total_step[active]
        current[active] = np.clip(overshot, 0.0, 255.0)
    return current, queries


def _table(
    attack,
    scores_model,
    images,
    adversarials,
    labels,
    target_labels,
    *,
    th,
    queries,
    batch_size,
    return_images,
    stop_reasons=None,
):
    """Result table of a gradient attack, one row per image.

    Gradient attacks decide success from one scoring of their final images,
    so there is no second scoring to compare with. Each image runs its
    `queries` iterations; `stop_reasons` (default "budget" for every row) says
    otherwise for attacks that stop an image early.
    """
    if stop_reasons is None:
        stop_reasons = np.full(len(images), "budget", dtype=object)
    table = build_table(
        attack=attack,
        strategy="gradient",
        image_indices=np.arange(len(images)),
        th=np.full(len(images), th, dtype="float64"),
        labels=labels,
        target_labels=target_labels,
        original_scores=model_calls.predict_scores(scores_model, images, batch_size),
        adversarial_scores=model_calls.predict_scores(scores_model, adversarials, batch_size),
        rescored_scores=None,
        originals=images,
        adversarials=adversarials,
        queries=queries,
        generations=queries,
        stop_reasons=stop_reasons,
    )
    if return_images:
        return table, adversarials
    return table


def _make_loss_gradient(scores_model, loss):
    """Compiled function (images, labels) -> gradient of each image's loss.

    "cross_entropy": `-log_softmax(s)_label`; "margin": `max_{j != label} s_j
    - s_label`, which also grows as the image moves away from `label`. Either
    way untargeted attacks climb the loss of the true class and targeted ones
    descend that of the target.
    """

    @tf.function(reduce_retracing=True)
    def loss_gradient(images, labels):
        with tf.GradientTape() as tape:
            tape.watch(images)
            scores = scores_model(images, training=False)
            label_mask = tf.one_hot(labels, tf.shape(scores)[1], dtype=scores.dtype)
            label_scores = tf.reduce_sum(scores * label_mask, axis=1)
            if loss == "margin":
                best_other = tf.reduce_max(scores - 1e9 * label_mask, axis=1)
                losses = best_other - label_scores
            else:
                losses = tf.reduce_logsumexp(scores, axis=1) - label_scores
            # Summing the per-image losses leaves each image's gradient its own.
            total = tf.reduce_sum(losses)
        return tape.gradient(total, images)

    return loss_gradient


def _make_jacobian_function(scores_model):
    """Compiled function images -> (log-scale scores, their Jacobian per image)."""

    @tf.function(reduce_retracing=True)
    def log_probabilities_and_jacobian(images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            log_probabilities = scores_model(images, training=False)
        return log_probabilities, tape.batch_jacobian(log_probabilities, images)

    return log_probabilities_and_jacobian


def _make_carlini_wagner_step(scores_model, targeted, confidence, learning_rate):
    """Compiled Adam step of the C&W objective; also returns the step's candidates."""
    first_decay, second_decay, adam_epsilon = 0.9, 0.999, 1e-8

    @tf.function(reduce_retracing=True)
    def adam_step(w, first_moment, second_moment, iteration, originals, objective, const):
        with tf.GradientTape() as tape:
            tape.watch(w)
            candidates = (tf.tanh(w) + 1.0) / 2.0
            log_probabilities = scores_model(candidates * 255.0, training=False)
            objective_mask = tf.one_hot(objective, tf.shape(log_probabilities)[1])
            objective_score = tf.reduce_sum(log_probabilities * objective_mask, axis=1)
            best_other_score = tf.reduce_max(log_probabilities - 1e9 * objective_mask, axis=1)
            if targeted:
                margin = best_other_score - objective_score
            else:
                margin = objective_score - best_other_score
            misclassification = tf.maximum(margin + confidence, 0.0)
            distance = tf.reduce_sum(tf.square(candidates - originals), axis=[1, 2, 3])
            loss = tf.reduce_sum(distance + const * misclassification)
        gradient = tape.gradient(loss, w)
        first_moment = first_decay * first_moment + (1.0 - first_decay) * gradient
        second_moment = second_decay * second_moment + (1.0 - second_decay) * tf.square(gradient)
        corrected_first = first_moment / (1.0 - first_decay**iteration)
        corrected_second = second_moment / (1.0 - second_decay**iteration)
        w = w - learning_rate * corrected_first / (tf.sqrt(corrected_second) + adam_epsilon)
        predicted = tf.argmax(log_probabilities, axis=1, output_type=objective.dtype)
        reached = tf.equal(predicted, objective) if targeted else tf.not_equal(predicted, objective)
        success = tf.logical_and(reached, margin + confidence <= 0.0)
        return w, first_moment, second_moment, candidates, distance, success

    return adam_step
