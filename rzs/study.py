"""One study = the notebooks' parameters turned into cached results, tables and figures.

The notebooks stay short: each builds a `Study` from its `parameters` cell and
asks it for what it shows. Every parameter is validated before any compute
starts, with a message naming the parameter, the value and what is allowed.
"""

import dataclasses
from pathlib import Path

import pandas as pd

from rzs import analysis, data, metrics, models, reliability, robustness, runner, zeroshot
from rzs.store import RunStore
from rzs.training import PRECISIONS, TrainingSpec

VANILLA = "vanilla"  # the defence column's value for undefended networks
NULL_CONTROL = analysis.NULL_CONTROL  # the defence column's value for vanilla retrained with seed + 1
# "temperature": DBM, AM and the embedded DBI are also computed on soft labels whose temperature
# was fitted on held-out in-distribution images (docs/metrics.md, "Calibration").
CALIBRATIONS = ("none", "temperature")
# The TrainingSpec fields a study sets for every network, each from its field of the same name;
# the spec's other fields come from the network, the dataset, the class left out, the defence and
# the seed (one of `seeds`).
TRAINING_OPTIONS = tuple(
    field.name
    for field in dataclasses.fields(TrainingSpec)
    if field.name not in ("network", "dataset", "excluded", "defence", "seed")
)
# Per-network overrides a profile may set in `network_options`.
NETWORK_OPTIONS = (
    "width",
    "epochs",
    "batch_size",
    "augmentation",
    "per_class_train",
    "batch_norm_momentum",
    "dropout_scale",
    "optimizer",
    "learning_rate",
    "schedule",
)


@dataclasses.dataclass
class Study:
    """The parameters shared by every notebook (see notebooks/profiles/*.yaml)."""

    profile: str = "quick"  # names the figures/<profile>/ and tables/<profile>/ folders
    dataset: str = "fashion_mnist"  # cifar10, cifar100, mnist, fashion_mnist or npz:PATH
    networks: list = dataclasses.field(default_factory=lambda: ["lenet"])  # any of rzs.models.list_models()
    excluded_classes: list | None = None  # None: every class
    per_class_train: int | None = None  # None: the whole training set
    per_class_test: int | None = None  # test images per class (None: all)
    width: float = 1.0  # channel multiplier; 1.0: the networks as the authors built them
    epochs: int | None = None  # None: the authors' recipe
    batch_size: int | None = None  # None: the authors' recipe
    augmentation: bool | None = None  # None: the recipe's (flips + 1/8 shifts)
    precision: str = "float32"  # training precision: float32, mixed_bfloat16 or mixed_float16
    # Recipe overrides for short runs (rzs.training.TrainingSpec); None keeps the recipe's.
    batch_norm_momentum: float | None = None  # None: Keras' 0.99, as the authors; short CPU runs need about 0.9
    dropout_scale: float | None = None  # None: the networks' dropout; 0 turns it off
    optimizer: str | None = None  # None: the recipe's; or sgd / adam
    learning_rate: float | None = None  # None: the recipe's
    schedule: str | None = None  # None: the recipe's; cosine (per-step decay to 0) or warmup_cosine
    network_options: dict = dataclasses.field(default_factory=dict)  # per-network overrides, e.g. {"vit": {"epochs": 10}}
    seeds: list = dataclasses.field(default_factory=lambda: [0])  # training and attack seeds; every model and table for each
    workers: int = 1  # results computed at once, each in its own process
    backend: str = "local"  # local (subprocesses), inline or ray (pip install rzs[ray])
    results_dir: str = "../results"  # the run store
    figures_dir: str = "../figures"  # figures go to <figures_dir>/<profile>/
    tables_dir: str = "../tables"  # tables go to <tables_dir>/<profile>/
    # Metric options (docs/metrics.md): DBM's power q, AM's distance and reduction, and
    # whether the soft labels of test or train images are measured.
    metric_q: float = 2  # DBM's power q (docs/metrics.md)
    am_distance: str = "l1"  # AM's distance: l1 or l2
    am_reduce: str = "image"  # AM's reduction: image or mean (docs/metrics.md)
    metric_images: str = "test"  # soft labels of the excluded class's test or train images
    calibration: str = "none"  # none, or temperature: DBM, AM, embedded DBI also on calibrated soft labels
    # Attacks (rzs.robustness): which, at which budgets th, on how many of the first test
    # images, with which black-box search and budget (the authors': CMA-ES, 400 x 100).
    attacks: list = dataclasses.field(default_factory=lambda: ["pixel", "threshold"])  # any of rzs.attacks.list_attacks(): also square, sparse_rs, fgsm, bim, pgd, carlini_wagner_l2, deepfool
    thresholds: list | dict = dataclasses.field(default_factory=lambda: [1, 3, 5, 10])  # th for every attack, or {attack: [th, ...]}: pixels changed (pixel, sparse_rs) or largest change on 0-255 (others)
    attack_images: int = 100  # the first test images are attacked (the authors: 1000)
    attack_strategy: str = "cmaes"  # cmaes or de
    attack_population: int = 400  # candidates per generation (the authors: 400)
    attack_generations: int = 100  # generations per image and th (the authors: 100)
    attack_fitness: str = "margin"  # margin (log-margin from logits) or probability (the authors'); docs/attacks.md
    attack_stop_on_convergence: bool = False  # True: cma's flat-fitness tolerances may end a search before its budget
    attack_gradient_loss: str = "cross_entropy"  # fgsm, bim, pgd: cross_entropy or margin, from the logits
    attack_random_start: bool = False  # pgd: start from a random point of the eps-ball (False: pgd is bim)
    attack_queries: int = 10000  # square, sparse_rs: queries per image and th (the papers' 10,000)
    # Defences (rzs.defences): which, and on which networks (None: every network).
    defences: list = dataclasses.field(default_factory=list)  # any of rzs.defences.list_defences()
    defence_networks: list | None = None  # None: every network of the study
    defence_attacks: list | None = None  # attacks run on the defended arms; None: every attack of attacks
    null_control: bool = True  # defence tables also test vanilla retrained with seed + 1 (docs/analysis.md)
    alpha: float = 0.05  # significance level of the summary's verdicts

    @classmethod
    def from_namespace(cls, namespace):
        """A validated study from the variables of a notebook's `parameters` cell."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls.from_parameters(**{k: v for k, v in namespace.items() if k in names})

    @classmethod
    def from_parameters(cls, **parameters):
        """A validated study; unknown parameter names are an error, never ignored."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(parameters) - known)
        if unknown:
            raise ValueError(f"Unknown parameters {unknown}. Known parameters: {sorted(known)}.")
        study = cls(**parameters)
        study.validate()
        return study

    def validate(self):
        available = models.list_models()
        if not isinstance(self.networks, (list, tuple)) or not self.networks:
            raise ValueError(f"networks must be a non-empty list, received {self.networks!r}.")
        unknown = [name for name in self.networks if name not in available]
        if unknown:
            raise ValueError(f"networks {unknown} do not exist. Available: {available}.")
        for network, options in self.network_options.items():
            if network not in available:
                raise ValueError(f"network_options names unknown network {network!r}.")
            extra = sorted(set(options) - set(NETWORK_OPTIONS))
            if extra:
                raise ValueError(
                    f"network_options[{network!r}] has unknown keys {extra}; allowed: {NETWORK_OPTIONS}."
                )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, received {self.precision!r}.")
        if self.backend not in runner.BACKENDS:
            raise ValueError(f"backend must be one of {sorted(runner.BACKENDS)}, received {self.backend!r}.")
        num_classes = self.num_classes
        if self.excluded_classes is not None:
            bad = [c for c in self.excluded_classes if not isinstance(c, int) or not 0 <= c < num_classes]
            if bad:
                raise ValueError(
                    f"excluded_classes {bad} are out of range for {self.dataset!r} "
                    f"(classes 0..{num_classes - 1})."
                )
        if self.am_distance not in metrics.DISTANCE_ORDERS:
            raise ValueError(
                f"am_distance must be one of {list(metrics.DISTANCE_ORDERS)}, received {self.am_distance!r}."
            )
        if self.am_reduce not in metrics.REDUCTIONS:
            raise ValueError(f"am_reduce must be one of {list(metrics.REDUCTIONS)}, received {self.am_reduce!r}.")
        if not isinstance(self.metric_q, (int, float)) or not self.metric_q > 0:
            raise ValueError(f"metric_q must be a number > 0, received {self.metric_q!r}.")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {list(CALIBRATIONS)}, received {self.calibration!r}.")
        if (
            not isinstance(self.seeds, (list, tuple))
            or not self.seeds
            or any(isinstance(seed, bool) or not isinstance(seed, int) for seed in self.seeds)
            or len(set(self.seeds)) != len(self.seeds)
        ):
            raise ValueError(f"seeds must be a non-empty list of distinct integers, received {self.seeds!r}.")
        if self.metric_images not in ("test", "train"):
            raise ValueError(f"metric_images must be 'test' or 'train', received {self.metric_images!r}.")
        if not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be a number in (0, 1), received {self.alpha!r}.")
        if not isinstance(self.null_control, bool):
            raise ValueError(f"null_control must be True or False, received {self.null_control!r}.")
        if NULL_CONTROL in self.defences:
            raise ValueError(f"defences must not name {NULL_CONTROL!r}, the null control's label; received {self.defences!r}.")
        if self.defence_networks is not None:
            unknown = [name for name in self.defence_networks if name not in self.networks]
            if unknown:
                raise ValueError(
                    f"defence_networks {unknown} are not among networks {list(self.networks)}."
                )
        if self.attack_fitness not in robustness.FITNESSES:
            raise ValueError(
                f"attack_fitness must be one of {list(robustness.FITNESSES)}, received {self.attack_fitness!r}."
            )
        if self.attack_gradient_loss not in robustness.GRADIENT_LOSSES:
            raise ValueError(
                f"attack_gradient_loss must be one of {list(robustness.GRADIENT_LOSSES)}, "
                f"received {self.attack_gradient_loss!r}."
            )
        if self.defence_attacks is not None and (
            not isinstance(self.defence_attacks, (list, tuple))
            or not self.defence_attacks
            or not set(self.defence_attacks) <= set(self.attacks)
        ):
            raise ValueError(
                f"defence_attacks must be None or a non-empty list of attacks of {list(self.attacks)}, "
                f"received {self.defence_attacks!r}."
            )
        if isinstance(self.thresholds, dict) and not set(self.attacks) <= set(self.thresholds):
            raise ValueError(
                f"thresholds, given per attack, must name every attack of {list(self.attacks)}; "
                f"received {self.thresholds!r}."
            )
        for name in ("workers", "attack_images", "attack_population", "attack_generations", "attack_queries"):
            _check_positive_integer(getattr(self, name), name)
        for name in ("per_class_train", "per_class_test", "epochs", "batch_size"):
            if getattr(self, name) is not None:
                _check_positive_integer(getattr(self, name), name, "None or ")
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not self.width > 0:
            raise ValueError(f"width must be a number > 0, received {self.width!r}.")
        for name in ("attack_stop_on_convergence", "attack_random_start"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, received {getattr(self, name)!r}.")
        # Building every spec checks the remaining values (epochs, batch_size, th, defences, ...).
        self.attack_specs()
        for defence in self.defences:
            self.attack_specs(self.defended_networks(), defence)

    @property
    def num_classes(self):
        return data.num_classes(self.dataset)

    @property
    def classes(self):
        return list(range(self.num_classes)) if self.excluded_classes is None else list(self.excluded_classes)

    @property
    def store(self):
        return RunStore(self.results_dir)

    def spec_options(self, network, defence=None, seed=None):
        """The TrainingSpec options of `network` for `seed` (default: the first of `seeds`)."""
        options = {name: getattr(self, name) for name in TRAINING_OPTIONS}
        options.update(self.network_options.get(network, {}))
        options["seed"] = self.seeds[0] if seed is None else seed
        if defence == NULL_CONTROL:
            # The null control is a vanilla network retrained with the next seed.
            options["seed"] += 1
        elif defence is not None:
            options["defence"] = defence
        return options

    def model_specs(self, network, defence=None, seed=None):
        """Per seed (default: each of `seeds` in turn), the leave-one-out specs of `network` for
        the study's classes, then the full model's."""
        return [
            spec
            for one_seed in (self.seeds if seed is None else [seed])
            for spec in zeroshot.specs_for(
                network, self.dataset, self.classes, **self.spec_options(network, defence, one_seed)
            )
        ]

    def full_spec(self, network, defence=None, seed=None):
        """The full model's spec for `seed` (default: the first of `seeds`)."""
        return self.model_specs(network, defence, self.seeds[0] if seed is None else seed)[-1]

    def defence_arms(self):
        """The defences, then the null control (when `null_control` and any defence is set)."""
        return [*self.defences, NULL_CONTROL] if self.defences and self.null_control else list(self.defences)

    def defended_networks(self):
        return self.networks if self.defence_networks is None else list(self.defence_networks)

    def train(self, networks=None, defence=None):
        """Compute every missing model, then its float32 predictions (`rzs.zeroshot.PredictionSpec`); prints the grid reports."""
        specs = [spec for network in networks or self.networks for spec in self.model_specs(network, defence)]
        report = self._run(specs, zeroshot.get_or_train)
        self._run(zeroshot.prediction_specs(specs), zeroshot.get_or_predict)
        return report

    def train_defences(self):
        """Train (or derive, for test-time defences) every defended network's models, then their float32 predictions."""
        specs = [
            spec
            for defence in self.defence_arms()
            for network in self.defended_networks()
            for spec in self.model_specs(network, defence)
        ]
        report = self._run(specs, zeroshot.get_or_train)
        self._run(zeroshot.prediction_specs(specs), zeroshot.get_or_predict)
        return report

    def zero_shot(self, network, defence=None, seed=None):
        """The stored `RawZeroShot` of `network` for `seed` (default: the first of `seeds`):
        float32 predictions computed by notebook 01 (`train`), or 05 if defended."""
        predictions = zeroshot.prediction_specs(self.model_specs(network, defence, self.seeds[0] if seed is None else seed))
        missing = [spec for spec in predictions if not self.store.has(spec.kind, spec.config())]
        if missing:
            raise LookupError(
                f"The predictions of {len(missing)} of {network}'s models (defence {defence}, seed "
                f"{missing[0].training_spec.seed}) are not in {self.results_dir}; run notebook "
                f"{'05' if defence else '01'} with the same parameters first."
            )
        return zeroshot.load_raw_zero_shot(network, predictions, self.store)

    def excluded_test_images(self, excluded, count):
        """The first `count` test images of class `excluded` (uint8), in dataset order."""
        _, split = self.full_spec(self.networks[0]).with_excluded(excluded).load_data()
        return split.x_test_excluded[:count]

    def accuracy_table(self, networks=None, defence=None):
        """Test accuracy, parameters and training time of every model, one row each."""
        rows = []
        for network in networks or self.networks:
            # The seed column is the study's seed: the null control's model has seed + 1.
            for seed in self.seeds:
                for spec in self.model_specs(network, defence, seed):
                    record = self.store.load(spec.kind, spec.config()).record
                    rows.append(
                        {
                            "network": spec.network,
                            "seed": seed,
                            "defence": defence or VANILLA,
                            "model": "full" if spec.excluded is None else f"without {spec.excluded}",
                            "excluded_class": spec.excluded,
                            "test_accuracy": record["test_accuracy"],
                            "parameters": record["parameters"],
                            "train_seconds": record["timings"]["train_seconds"],
                        }
                    )
        return pd.DataFrame(rows)

    def metrics_table(self, networks=None, defence=None):
        """DBM, AM and the embedded DBI per network x seed x excluded class (`rzs.metrics.metrics_table`).

        Columns of `rzs.metrics.metrics_table`, and seed, defence, precision (of the soft
        labels), degenerate (the leave-one-out model is, by `hygiene_table`); with
        `calibration="temperature"` also dbm_calibrated, am_calibrated, embedded_dbi_calibrated
        and the fitted temperature_zero_shot (C_-i's) and temperature_full (C's).
        """
        tables = []
        for network in networks or self.networks:
            for seed in self.seeds:
                result = self.zero_shot(network, defence, seed)
                calibrated, temperatures = None, None
                if self.calibration == "temperature":
                    calibrated, temperatures = result.calibrated_soft_label_pairs(self.metric_images)
                table = metrics.metrics_table(
                    result.soft_label_pairs(self.metric_images),
                    network,
                    result.class_names,
                    q=self.metric_q,
                    distance=self.am_distance,
                    reduce=self.am_reduce,
                    calibrated=calibrated,
                )
                if temperatures is not None:
                    table["temperature_zero_shot"] = [temperatures[i][0] for i in table["excluded_class"]]
                    table["temperature_full"] = [temperatures[i][1] for i in table["excluded_class"]]
                hygiene = result.hygiene()
                table["degenerate"] = [hygiene[i]["degenerate"] for i in table["excluded_class"]]
                tables.append(table.assign(seed=seed, defence=defence or VANILLA, precision=result.precision))
        return pd.concat(tables, ignore_index=True)

    def hygiene_table(self, networks=None, defence=None):
        """Is every model usable? One row per network, seed and model (`rzs.metrics.classifier_hygiene`).

        Columns network, seed, defence, model ("full" or "without i"), excluded_class (NaN for
        the full model), classes (C it knows), accuracy_seen (on the test images of its own
        classes), classes_predicted (distinct classes it predicts on them), mean_confidence
        (mean largest soft label on them), excluded_confidence (the same on the excluded class's
        `metric_images`, the metrics' input; NaN for the full model), degenerate and reason
        (docs/metrics.md, "Metric hygiene").
        """
        rows = []
        for network in networks or self.networks:
            for seed in self.seeds:
                result = self.zero_shot(network, defence, seed)
                pairs = result.soft_label_pairs(self.metric_images)
                for excluded, hygiene in result.hygiene().items():
                    rows.append(
                        {
                            "network": network,
                            "seed": seed,
                            "defence": defence or VANILLA,
                            "model": "full" if excluded is None else f"without {excluded}",
                            "excluded_class": excluded,
                            "classes": self.num_classes - (excluded is not None),
                            "accuracy_seen": hygiene["accuracy"],
                            "classes_predicted": hygiene["classes_predicted"],
                            "mean_confidence": hygiene["mean_confidence"],
                            "excluded_confidence": (
                                float("nan") if excluded is None else float(pairs[excluded][0].max(axis=1).mean())
                            ),
                            "degenerate": hygiene["degenerate"],
                            "reason": hygiene["reason"],
                        }
                    )
        return pd.DataFrame(rows)

    def reliability_table(self, attacks=False):
        """Are differences between networks signal? `rzs.reliability.reliability_table` per quantity.

        Quantities: every metric of `metrics.network_metric_values`, the full models' test
        accuracy and, with `attacks`, every attack's accuracy per th over all attacked images
        ("<attack> th=<th>") and over the correctly classified ones ("... (correct)").
        """
        values = [
            metrics.network_metric_values(self.metrics_table()).rename(columns={"metric": "quantity"}),
        ]
        accuracy = self.accuracy_table()
        values.append(
            accuracy[accuracy["excluded_class"].isna()]
            .rename(columns={"test_accuracy": "value"})
            .assign(quantity="test accuracy")
        )
        if attacks:
            summary = self.attack_summary()
            quantity = summary["attack"] + " th=" + summary["th"].astype("Int64").astype(str)
            values.append(summary.assign(quantity=quantity, value=summary["attack_accuracy"]))
            values.append(
                summary.assign(quantity=quantity + " (correct)", value=summary["attack_accuracy_on_correct"])
            )
        columns = ["network", "seed", "quantity", "value"]
        return reliability.reliability_table(pd.concat([frame[columns] for frame in values], ignore_index=True))

    def attacks_for(self, defence=None):
        """The attacks run on `defence`'s arm: `attacks`, or `defence_attacks` for a defence."""
        if defence is None or self.defence_attacks is None:
            return list(self.attacks)
        return list(self.defence_attacks)

    def attack_specs(self, networks=None, defence=None, attacks=None):
        """One `AttackSpec` per full model of `networks` (default all) and attack of `attacks`
        (default: `attacks_for(defence)`)."""
        return [
            robustness.AttackSpec(
                model=dataclasses.asdict(self.full_spec(network, defence, seed)),
                attack=attack,
                thresholds=tuple(self.attack_thresholds(attack)),
                images=self.attack_images,
                strategy=self.attack_strategy,
                population=self.attack_population,
                generations=self.attack_generations,
                seed=seed,
                fitness=self.attack_fitness,
                stop_on_convergence=self.attack_stop_on_convergence,
                gradient_loss=self.attack_gradient_loss,
                random_start=self.attack_random_start,
                queries=self.attack_queries,
            )
            for network in networks or self.networks
            for seed in self.seeds
            for attack in (self.attacks_for(defence) if attacks is None else attacks)
        ]

    def attack_thresholds(self, attack):
        """The budgets th at which `attack` runs: `thresholds`, or its entry when that is a dict."""
        if isinstance(self.thresholds, dict):
            return self.thresholds[attack]
        return self.thresholds

    def attack(self, networks=None, defence=None):
        """Compute every missing attack result; prints and returns the grid report."""
        return self._run(self.attack_specs(networks, defence), robustness.get_or_attack)

    def attack_defences(self):
        """Attack every defended network's full model."""
        specs = [
            spec for defence in self.defence_arms() for spec in self.attack_specs(self.defended_networks(), defence)
        ]
        return self._run(specs, robustness.get_or_attack)

    def attack_summary(self, networks=None, defence=None, attacks=None):
        """Attack accuracy per network, attack and th (rzs.attacks.summarize, stored)."""
        rows = []
        for spec in self.attack_specs(networks, defence, attacks):
            if not self.store.has(spec.kind, spec.config()):
                raise LookupError(
                    f"The {spec.attack} attack on {spec.model['network']} (defence {defence}) is "
                    f"not in {self.results_dir}; run notebook {'05' if defence else '03'} with the "
                    "same parameters first."
                )
            for row in self.store.load(spec.kind, spec.config()).record["summary"]:
                rows.append(
                    # spec.seed, the study's seed: the null control's model has seed + 1.
                    {"network": spec.model["network"], "seed": spec.seed, "defence": defence or VANILLA, **row}
                )
        return pd.DataFrame(rows)

    def attack_tables(self, networks=None, defence=None, attacks=None):
        """The stored per-image attack tables (`table.csv`) of every network, seed and attack.

        Columns network, seed (the study's seed), defence and those of `rzs.attacks.results`
        (attack, strategy, image, th, true_label, original_label, adversarial_label, success, ...).
        """
        self.attack_summary(networks, defence, attacks)  # raises LookupError, naming the notebook, if missing
        tables = [
            pd.read_csv(self.store.load(spec.kind, spec.config()).path(robustness.TABLE_FILE)).assign(
                network=spec.model["network"], seed=spec.seed, defence=defence or VANILLA
            )
            for spec in self.attack_specs(networks, defence, attacks)
        ]
        return pd.concat(tables, ignore_index=True)

    def defence_values(self):
        """Vanilla, defended and null-control values of the defended networks, per seed.

        Returns (class_values, network_values): class_values has columns network, seed, defence,
        excluded_class, quantity ("DBM", "AM"), value; network_values network, seed, defence,
        quantity ("test accuracy", the full model's), value. The null control's rows carry the
        study's seed it is paired with (its models were trained with seed + 1).
        """
        networks = self.defended_networks()
        class_rows, network_rows = [], []
        for defence in [None, *self.defence_arms()]:
            table = self.metrics_table(networks, defence)
            for metric in ("dbm", "am"):
                class_rows.append(
                    table[["network", "seed", "defence", "excluded_class", metric]]
                    .rename(columns={metric: "value"})
                    .assign(quantity=metric.upper())
                )
            accuracy = self.accuracy_table(networks, defence)
            accuracy = accuracy[accuracy["excluded_class"].isna()].rename(columns={"test_accuracy": "value"})
            if defence == NULL_CONTROL:
                accuracy = accuracy.assign(seed=accuracy["seed"] - 1)
            network_rows.append(accuracy.assign(quantity="test accuracy")[["network", "seed", "defence", "quantity", "value"]])
        return pd.concat(class_rows, ignore_index=True), pd.concat(network_rows, ignore_index=True)

    def defence_attack_tables(self):
        """`attack_tables` of the defended networks and the attacks of the defended arms
        (`attacks_for`): vanilla, every defence and the null control."""
        networks, attacks = self.defended_networks(), self.attacks_for(NULL_CONTROL)
        return pd.concat(
            [self.attack_tables(networks, defence, attacks) for defence in [None, *self.defence_arms()]],
            ignore_index=True,
        )

    def defence_analysis(self, resamples=analysis.RESAMPLES):
        """Every defence and the null control against vanilla, at the unit of the network.

        Returns (values, tests) of `rzs.analysis.defence_analysis`: the per-network values the
        defence figure draws and the table of tests, from one computation (docs/analysis.md).
        """
        class_values, network_values = self.defence_values()
        return analysis.defence_analysis(
            class_values, self.defence_attack_tables(), network_values, vanilla=VANILLA,
            null_control=NULL_CONTROL, alpha=self.alpha, resamples=resamples,
        )

    def defence_tests(self):
        """The tests of `defence_analysis` (one row per defence and quantity)."""
        return self.defence_analysis()[1]

    def planned_specs(self):
        """The specs of every result each computing method needs, by method name.

        What `train`, `attack`, `train_defences` and `attack_defences` would
        compute or find cached; `rzs.reproduce` counts them before a run.
        """
        models = [spec for network in self.networks for spec in self.model_specs(network)]
        defended = [
            spec
            for defence in self.defence_arms()
            for network in self.defended_networks()
            for spec in self.model_specs(network, defence)
        ]
        return {
            "train": models + zeroshot.prediction_specs(models),
            "attack": self.attack_specs(),
            "train_defences": defended + zeroshot.prediction_specs(defended),
            "attack_defences": [
                spec for defence in self.defence_arms() for spec in self.attack_specs(self.defended_networks(), defence)
            ],
        }

    def _run(self, specs, compute):
        report = runner.run_grid(
            specs, self.store, workers=self.workers, backend=self.backend, compute=compute
        )
        print(report)
        report.raise_for_failures()
        return report

    def figure_path(self, name):
        """Where figure `name` goes (PNG and PDF share the stem)."""
        directory = Path(self.figures_dir) / self.profile
        directory.mkdir(parents=True, exist_ok=True)
        return directory / name

    def save_table(self, frame, name, float_format="%.4g"):
        """Write `frame` as CSV and Markdown to tables/<profile>/; returns the CSV path."""
        directory = Path(self.tables_dir) / self.profile
        directory.mkdir(parents=True, exist_ok=True)
        csv_path = directory / f"{name}.csv"
        frame.to_csv(csv_path, index=False, float_format=float_format)
        (directory / f"{name}.md").write_text(
            frame.to_markdown(index=False, floatfmt=".4g") + "\n"
        )
        return csv_path


def _check_positive_integer(value, name, also_allowed=""):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be {also_allowed}a positive integer, received {value!r}.")
