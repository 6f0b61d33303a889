"""DBM and AM of adversarial examples: the leave-one-out models' view of attacked images.

The authors' README lists this as a step of their study and never published it. For excluded
class c, the attacked test images whose true class is c were crafted against the full model C;
the leave-one-out model C_-c never saw class c, so its soft labels on those adversarial images,
against its soft labels on the same clean images, say whether a perturbation that fools C also
moves how C_-c describes the unseen class (docs/metrics.md, "DBM and AM of adversarial
examples").

`AdversarialSoftLabelSpec` is the cached kind "adversarial_soft_labels": for one full model
(network, seed, defence) and the attacks run on it, the float32 soft labels that C_-c and C give
to each adversarial image of class c and to its clean image, one row per attack-table row.
`adversarial_estimates` turns them into DBM and AM of the adversarial and of the clean soft
labels and their difference, per network, attack and th, with bootstrap intervals over the
images of each class (`rzs.analysis`), on the images the full model classified correctly, and
on those of them the attack succeeded on.
"""

import dataclasses
import time
import warnings

import numpy as np
import pandas as pd
from scipy import special

from rzs import analysis, inference, metrics, pipeline, reproducibility, robustness, runner, zeroshot

# The soft labels stored per attack, each one row per attack-table row of an excluded class.
SOFT_LABELS = ("clean_zero_shot", "clean_full", "adversarial_zero_shot", "adversarial_full")
# The attack-table columns stored beside them, so the estimates need no table.
ROW_FIELDS = ("rows", "th", "true_label", "correct", "success")
QUANTITIES = ("clean", "adversarial", "difference")
# A class enters a network's value with at least this many images: the scatter of one image is 0
# by definition, which would pull DBM down wherever an attack leaves a class a single image.
MINIMUM_CLASS_IMAGES = 2


def load_adversarials(result):
    """The adversarial images of a stored attack result, one per table row, in table order.

    uint8 for the search attacks, float32 for the gradient ones. Raises LookupError for a
    result stored before `rzs.robustness.get_or_attack` kept its images: its cache key is the
    same, so only deleting it makes notebook 03 compute it again, images included.
    """
    path = result.path(robustness.ADVERSARIALS_FILE)
    if not path.is_file():
        raise LookupError(
            f"The {result.record['config']['attack']} attack result {result.directory} holds no "
            f"adversarial images ({robustness.ADVERSARIALS_FILE}): it was computed before they were "
            "stored. Delete that directory and run notebook 03 again to recompute it."
        )
    with np.load(path, allow_pickle=False) as arrays:
        return arrays["images"]


@dataclasses.dataclass(frozen=True)
class AdversarialSoftLabelSpec:
    """The soft labels of one full model's adversarial examples; its cache key.

    One spec covers every attack run on the full model, so each of its N + 1 models is
    loaded once (loading, not predicting a few hundred images, is what costs).
    """

    attacks: tuple  # AttackSpec fields of each attack, all on the same full model
    excluded_classes: tuple  # the classes c whose leave-one-out models C_-c are asked

    kind = "adversarial_soft_labels"

    def __post_init__(self):
        object.__setattr__(self, "attacks", tuple(self.attacks))
        object.__setattr__(self, "excluded_classes", tuple(self.excluded_classes))
        if not self.attacks:
            raise ValueError("attacks must be a non-empty list of AttackSpec fields, received [].")
        specs = self.attack_specs
        configs = [spec.training_spec.config() for spec in specs]
        if any(config != configs[0] for config in configs):
            raise ValueError(
                f"attacks must all attack the same full model, received attacks on "
                f"{[spec.network for spec in specs]} with different models."
            )
        names = [spec.attack for spec in specs]
        unbudgeted = [spec.attack for spec in specs if not spec.entry.budgeted]
        if len(set(names)) != len(names) or unbudgeted:
            raise ValueError(
                f"attacks must be distinct attacks with a budget th, received {names}"
                f"{f' ({unbudgeted} have no th)' if unbudgeted else ''}."
            )
        bad = [value for value in self.excluded_classes if isinstance(value, bool) or not isinstance(value, int)]
        if bad or not self.excluded_classes or len(set(self.excluded_classes)) != len(self.excluded_classes):
            raise ValueError(
                f"excluded_classes must be a non-empty list of distinct class indices, received "
                f"{list(self.excluded_classes)}."
            )

    @property
    def attack_specs(self):
        return [robustness.AttackSpec(**fields) for fields in self.attacks]

    @property
    def network(self):
        return self.attacks[0]["model"]["network"]

    def config(self):
        return {
            "attacks": [spec.config() for spec in self.attack_specs],
            "excluded_classes": sorted(self.excluded_classes),
            "precision": inference.INFERENCE_PRECISION,
        }


def compute_adversarial_soft_labels(spec, store):
    """Predict, in float32, every adversarial and clean image of the excluded classes.

    Reads the stored attack results and models only: a missing one is a LookupError naming the
    notebook that computes it, never a training run. For each attack, arrays named
    "<attack>_<field>" hold one row per attack-table row whose true class is excluded:
    `ROW_FIELDS` from the table (`rows` its positions, `correct`: the full model classified the
    clean image correctly) and `SOFT_LABELS`: C_-c's (N-1 wide) and C's (N wide) soft labels of
    the clean and of the adversarial image, c the row's true class.
    """
    attack_specs = spec.attack_specs
    full_spec = attack_specs[0].training_spec
    dataset, _ = full_spec.load_data()
    start = time.perf_counter()
    full_model = _stored_scores_model(full_spec, store)
    arrays, clean_images, adversarial_images = {}, {}, {}
    for attack_spec in attack_specs:
        result = _stored(store, attack_spec, "03")
        table = pd.read_csv(result.path(robustness.TABLE_FILE))
        adversarials = load_adversarials(result)
        if len(adversarials) != len(table):
            raise ValueError(
                f"{result.directory} must hold one adversarial image per table row, received "
                f"{len(adversarials)} images for {len(table)} rows."
            )
        rows = np.flatnonzero(table["true_label"].isin(spec.excluded_classes).to_numpy())
        chosen = table.iloc[rows]
        name = attack_spec.attack
        arrays.update({
            f"{name}_rows": rows,
            f"{name}_th": chosen["th"].to_numpy(np.float64),
            f"{name}_true_label": chosen["true_label"].to_numpy(np.int64),
            f"{name}_correct": (chosen["original_label"] == chosen["true_label"]).to_numpy(),
            f"{name}_success": chosen["success"].to_numpy(bool),
        })
        clean_images[name] = dataset.x_test[: attack_spec.images][chosen["image"].to_numpy()]
        adversarial_images[name] = adversarials[rows]
        arrays[f"{name}_clean_full"] = _soft_labels(full_model, clean_images[name])
        arrays[f"{name}_adversarial_full"] = _soft_labels(full_model, adversarial_images[name])
    num_classes = arrays[f"{attack_specs[0].attack}_clean_full"].shape[1]
    for name in clean_images:
        for kind in ("clean", "adversarial"):
            arrays[f"{name}_{kind}_zero_shot"] = np.zeros((len(clean_images[name]), num_classes - 1), np.float32)
    for excluded in spec.excluded_classes:
        zero_shot_model = _stored_scores_model(full_spec.with_excluded(excluded), store)
        for name in clean_images:
            of_class = arrays[f"{name}_true_label"] == excluded
            for kind, images in (("clean", clean_images[name]), ("adversarial", adversarial_images[name])):
                arrays[f"{name}_{kind}_zero_shot"][of_class] = _soft_labels(zero_shot_model, images[of_class])
    record = {
        "precision": inference.INFERENCE_PRECISION,
        "attacks": [attack_spec.attack for attack_spec in attack_specs],
        "excluded_classes": list(spec.excluded_classes),
        "num_classes": num_classes,
        "timings": {"predict_seconds": time.perf_counter() - start},
        **reproducibility.environment(),
    }
    return record, arrays


def get_or_compute(spec, store):
    """The stored soft labels of `spec`, computing them only if they are missing."""
    return store.compute(spec.kind, spec.config(), lambda: compute_adversarial_soft_labels(spec, store))


def attack_arrays(result):
    """{attack: {field: array}} of a stored `AdversarialSoftLabelSpec` result."""
    arrays = result.arrays
    return {
        attack: {field: arrays[f"{attack}_{field}"] for field in (*ROW_FIELDS, *SOFT_LABELS)}
        for attack in result.record["attacks"]
    }


def _stored(store, spec, notebook):
    config = spec.config()
    if not store.has(spec.kind, config):
        raise LookupError(
            f"The {spec.kind} result {store.directory(spec.kind, config)} of {spec.network} is missing; "
            f"run notebook {notebook} with the same parameters first."
        )
    return store.load(spec.kind, config)


def _stored_scores_model(training_spec, store):
    """The stored model's log-scale scores in float32, as `rzs.zeroshot` predicts them."""
    result = _stored(store, training_spec, "01 (05 if defended)")
    return inference.log_scores_model(inference.load_float32_model(result.path(zeroshot.MODEL_FILE)))


def _soft_labels(scores_model, images):
    """Float32 softmax of the log-scale scores, as `rzs.zeroshot` stores soft labels."""
    log_scores = pipeline.predict_probabilities(scores_model, images)
    return special.softmax(log_scores.astype(np.float64), axis=1).astype(np.float32)


# A study's adversarial soft labels -------------------------------------------------------------

def study_specs(study, defence=None):
    """Per (network, seed) of `study`: the spec of the attacks whose results hold their images.

    Returns (specs {(network, seed): AdversarialSoftLabelSpec}, skipped): skipped says, one
    sentence each, which attack results are left out and why (no budget th, or computed before
    attack results kept their images), so that a store of older attack results still gives
    the rest. Raises LookupError, naming notebook 03, when an attack result is missing.
    """
    study.attack_summary(None, defence)
    grouped, skipped = {}, []
    for attack_spec in study.attack_specs(None, defence):
        where = f"{attack_spec.attack} on {attack_spec.network} (seed {attack_spec.seed})"
        if not attack_spec.entry.budgeted:
            skipped.append(f"{where}: an attack without a budget th.")
            continue
        result = study.store.load(attack_spec.kind, attack_spec.config())
        if not result.path(robustness.ADVERSARIALS_FILE).is_file():
            skipped.append(f"{where}: computed before attack results kept their images; delete "
                           f"{result.directory} and run notebook 03 again to include it.")
            continue
        grouped.setdefault((attack_spec.network, attack_spec.seed), []).append(dataclasses.asdict(attack_spec))
    specs = {
        key: AdversarialSoftLabelSpec(attacks=tuple(fields), excluded_classes=tuple(study.classes))
        for key, fields in grouped.items()
    }
    return specs, skipped


def study_soft_labels(study, defence=None):
    """Compute (through the study's runner) or load every (network, seed)'s adversarial soft labels.

    Returns ({(network, seed): {attack: {field: array}}}, skipped) as `study_specs`.
    """
    specs, skipped = study_specs(study, defence)
    report = runner.run_grid(list(specs.values()), study.store, workers=study.workers,
                             backend=study.backend, compute=get_or_compute)
    print(report)
    report.raise_for_failures()
    soft_labels = {key: attack_arrays(study.store.load(spec.kind, spec.config())) for key, spec in specs.items()}
    return soft_labels, skipped


# DBM and AM of adversarial examples --------------------------------------------------------------

def adversarial_estimates(soft_labels, alpha=0.05, resamples=analysis.RESAMPLES, seed=analysis.SEED, q=2,
                          distance="l1", reduce="image"):
    """DBM and AM of the adversarial and of the clean soft labels, and their difference.

    For one network, attack and th, and excluded class c, the images are the attacked test
    images of class c the full model classified correctly (`successful_only` False) or those of
    them the attack succeeded on (True). On the same images: DBM_c of C_-c's soft labels, and
    AM_c of C_-c's against the full model's amalgam proportions (the full model's soft labels
    of the same image, adversarial or clean, so rows of Q_c and P_c stay the same image), as
    `rzs.metrics` with `q`, `distance` and `reduce`; the network's value is the mean over the
    classes with at least `MINIMUM_CLASS_IMAGES` such images, and difference = adversarial - clean.

    Intervals resample the images of each class (`rzs.analysis.bootstrap_weights`), the same
    draw for the adversarial and the clean soft labels, so the difference is paired; several
    seeds are pooled by `rzs.analysis.pool_seeds`.

    soft_labels: {(network, seed): {attack: {field: array}}} (`study_soft_labels`).
    Returns a DataFrame, one row per network, attack, th, successful_only and metric ("DBM",
    "AM"): clean, adversarial, difference, each with _ci_low and _ci_high; images and classes
    (those that enter the value, summed over seeds), seeds. Without such a class the values are NaN.
    """
    rng = np.random.default_rng(seed)
    keys = ["network", "seed", "attack", "th", "successful_only", "metric", "quantity"]
    rows, replicates = [], {}
    for (network, network_seed), by_attack in soft_labels.items():
        for attack, fields in by_attack.items():
            for th in np.unique(fields["th"]):
                for successful_only in (False, True):
                    chosen = fields["correct"] & (fields["th"] == th)
                    if successful_only:
                        chosen &= fields["success"]
                    labels, counts = np.unique(fields["true_label"][chosen], return_counts=True)
                    chosen &= np.isin(fields["true_label"], labels[counts >= MINIMUM_CLASS_IMAGES])
                    values, draws, classes = _class_means(fields, chosen, rng, resamples, q, distance, reduce)
                    for (metric, quantity), value in values.items():
                        key = (network, network_seed, attack, float(th), successful_only, metric, quantity)
                        replicates[key] = draws[(metric, quantity)]
                        rows.append({**dict(zip(keys, key)), "value": value, "n": int(chosen.sum()),
                                     "classes": classes})
    if not rows:
        return pd.DataFrame(columns=["network", "attack", "th", "successful_only", "metric", *_wide_columns(),
                                     "images", "classes", "seeds"])
    per_seed = pd.DataFrame(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no image: all-NaN replicates stay NaN
        bounds = np.array([np.nanpercentile(replicates[tuple(row)], [50 * alpha, 100 - 50 * alpha])
                           for row in per_seed[keys].itertuples(index=False, name=None)])
    per_seed["ci_low"], per_seed["ci_high"] = bounds[:, 0], bounds[:, 1]
    pooled, _ = analysis.pool_seeds(per_seed, replicates, keys, alpha, seed)
    rest = [key for key in keys if key != "seed"]
    classes = per_seed.groupby(rest, sort=False)["classes"].sum().reset_index()
    pooled = pooled.merge(classes, on=rest)
    return _wide(pooled, [key for key in rest if key != "quantity"])


def _class_means(fields, chosen, rng, resamples, q, distance, reduce):
    """Per (metric, quantity): the mean over classes of the per-class value, and its replicates."""
    per_class = {(metric, quantity): [] for metric in ("DBM", "AM") for quantity in QUANTITIES}
    per_class_draws = {key: [] for key in per_class}
    for excluded in np.unique(fields["true_label"][chosen]):
        of_class = chosen & (fields["true_label"] == excluded)
        weights = analysis.bootstrap_weights(int(of_class.sum()), resamples, rng)
        for kind in ("clean", "adversarial"):
            zero_shot, full = fields[f"{kind}_zero_shot"][of_class], fields[f"{kind}_full"][of_class]
            per_class[("DBM", kind)].append(metrics.davies_bouldin_metric(zero_shot, q=q))
            per_class_draws[("DBM", kind)].append(analysis.scatter_replicates(zero_shot, weights, q))
            per_class[("AM", kind)].append(metrics.amalgam_metric(zero_shot, full, excluded, distance, reduce))
            per_class_draws[("AM", kind)].append(
                analysis.amalgam_replicates(zero_shot, full, excluded, weights, distance, reduce))
    classes = len(per_class[("DBM", "clean")])
    values, draws = {}, {}
    for metric in ("DBM", "AM"):
        for kind in ("clean", "adversarial"):
            values[(metric, kind)] = float(np.mean(per_class[(metric, kind)])) if classes else np.nan
            draws[(metric, kind)] = (np.mean(per_class_draws[(metric, kind)], axis=0) if classes
                                     else np.full(resamples, np.nan))
        values[(metric, "difference")] = values[(metric, "adversarial")] - values[(metric, "clean")]
        draws[(metric, "difference")] = draws[(metric, "adversarial")] - draws[(metric, "clean")]
    return values, draws, classes


def _wide_columns():
    return [f"{quantity}{suffix}" for quantity in QUANTITIES for suffix in ("", "_ci_low", "_ci_high")]


def _wide(pooled, keys):
    """One row per `keys`: each quantity's value and interval side by side."""
    rows = []
    for key, group in pooled.groupby(keys, sort=False):
        by_quantity = group.set_index("quantity")
        row = dict(zip(keys, key))
        for quantity in QUANTITIES:
            row.update({quantity: by_quantity.loc[quantity, "value"],
                        f"{quantity}_ci_low": by_quantity.loc[quantity, "ci_low"],
                        f"{quantity}_ci_high": by_quantity.loc[quantity, "ci_high"]})
        first = by_quantity.iloc[0]
        row.update(images=int(first["n"]), classes=int(first["classes"]), seeds=int(first["seeds"]))
        rows.append(row)
    return pd.DataFrame(rows)
