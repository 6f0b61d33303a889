"""One study = the notebooks' parameters turned into cached results, tables and figures.

The notebooks stay short: each builds a `Study` from its `parameters` cell and
asks it for what it shows. Every parameter is validated before any compute
starts, with a message naming the parameter, the value and what is allowed.
"""

import dataclasses

import pandas as pd

from rzs import analysis, data, metrics, models, options, reliability, robustness, runner, tables, zeroshot
from rzs.attacks import registry as attack_registry
from rzs.options import option
from rzs.store import RunStore

VANILLA = "vanilla"  # the defence column's value for undefended networks
NULL_CONTROL = analysis.NULL_CONTROL  # the defence column's value for vanilla retrained with seed + 1
NETWORK_OPTIONS = options.NETWORK_OPTIONS  # the training options `network_options` may set per network

SEEDS = options.Check(
    lambda value: isinstance(value, (list, tuple))
    and len(value) > 0
    and all(options.is_integer(seed) for seed in value)
    and len(set(value)) == len(value),
    "a non-empty list of distinct integers",
)
CLASSES = options.Check(
    lambda value: isinstance(value, (list, tuple)) and all(options.is_integer(c) for c in value),
    "a list of class indices",
)
THRESHOLDS = options.Check(
    lambda value: isinstance(value, (list, tuple, dict)), "a list of budgets th, or {attack: [th, ...]}"
)
NETWORK_OVERRIDES = options.Check(
    lambda value: isinstance(value, dict) and all(isinstance(overrides, dict) for overrides in value.values()),
    "a dict {network: {option: value}}",
)
PROBABILITY = options.Check(lambda value: options.is_real(value) and 0 < value < 1, "a number in (0, 1)")


@dataclasses.dataclass(kw_only=True)
class StudyOptions(options.Options):
    """Study: the dataset, networks, classes, seeds and attacks, run where, written where."""

    profile: str = option("quick", options.NAME)  # names the figures/<profile>/ and tables/<profile>/ folders
    dataset: str = option("fashion_mnist", options.DATASET)  # cifar10, cifar100, mnist, fashion_mnist or npz:PATH
    networks: list = option(default_factory=lambda: ["lenet"], check=options.list_of(models.list_models))  # any of rzs.models.list_models()
    excluded_classes: list | None = option(None, options.optional(CLASSES))  # None: every class
    network_options: dict = option(default_factory=dict, check=NETWORK_OVERRIDES)  # per-network overrides, e.g. {"vit": {"epochs": 10}}
    seeds: list = option(default_factory=lambda: [0], check=SEEDS)  # training and attack seeds; every model and table for each
    attacks: list = option(default_factory=lambda: ["pixel", "threshold"], check=options.list_of(attack_registry.list_attacks))  # any of rzs.attacks.list_attacks(): also square, sparse_rs, fgsm, bim, pgd, carlini_wagner_l2, deepfool
    thresholds: list | dict = option(default_factory=lambda: [1, 3, 5, 10], check=THRESHOLDS)  # th for every attack, or {attack: [th, ...]}: pixels changed (pixel, sparse_rs) or largest change on 0-255 (others)
    workers: int = option(1, options.POSITIVE_INTEGER)  # results computed at once, each in its own process
    backend: str = option("local", options.one_of(lambda: sorted(runner.BACKENDS)))  # local (subprocesses), inline or ray (pip install rzs[ray])
    results_dir: str = option("results", options.NAME)  # the run store; a relative path is relative to the repository
    figures_dir: str = option("figures", options.NAME)  # figures go to <figures_dir>/<profile>/
    tables_dir: str = option("tables", options.NAME)  # tables go to <tables_dir>/<profile>/
    alpha: float = option(0.05, PROBABILITY)  # significance level of the summary's verdicts


# Every parameter of a study, group by group, in the order of the notebooks' parameters cells.
PARAMETER_GROUPS = (StudyOptions, *options.OPTION_GROUPS)


@dataclasses.dataclass(kw_only=True)
class Study(options.flattened(*PARAMETER_GROUPS)):
    """The parameters shared by every notebook (see notebooks/profiles/*.yaml).

    Its fields are those of `PARAMETER_GROUPS`, side by side: `StudyOptions`
    and the groups of `rzs.options` (attack options prefixed `attack_`), each
    with its default and check where it is declared.
    """

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
        """Check every parameter before any compute: each on its own where it is declared, then
        those that depend on others, then every spec the study would compute."""
        options.validate_fields(self)
        self._validate_relations()
        for network, overrides in self.network_options.items():
            _validate_network_options(network, overrides)
        # Building every spec checks the values that depend on the attack or defence (th, ...).
        self.attack_specs()
        for defence in self.defences:
            self.attack_specs(self.defended_networks(), defence)

    def _validate_relations(self):
        num_classes = self.num_classes
        if self.excluded_classes is not None:
            bad = [c for c in self.excluded_classes if not 0 <= c < num_classes]
            if bad:
                raise ValueError(
                    f"excluded_classes must be classes of {self.dataset!r} (0..{num_classes - 1}), "
                    f"received {bad} among {self.excluded_classes!r}."
                )
        if self.defence_networks is not None and not set(self.defence_networks) <= set(self.networks):
            raise ValueError(
                f"defence_networks must be None or networks of {list(self.networks)}, received {self.defence_networks!r}."
            )
        if self.defence_attacks is not None and not set(self.defence_attacks) <= set(self.attacks):
            raise ValueError(
                f"defence_attacks must be None or a non-empty list of attacks of {list(self.attacks)}, "
                f"received {self.defence_attacks!r}."
            )
        if isinstance(self.thresholds, dict) and not set(self.attacks) <= set(self.thresholds):
            raise ValueError(
                f"thresholds, given per attack, must name every attack of {list(self.attacks)}; "
                f"received {self.thresholds!r}."
            )

    @property
    def num_classes(self):
        return data.num_classes(self.dataset)

    @property
    def classes(self):
        return list(range(self.num_classes)) if self.excluded_classes is None else list(self.excluded_classes)

    @property
    def store(self):
        return RunStore(options.project_path(self.results_dir))

    def spec_options(self, network, defence=None, seed=None):
        """The TrainingSpec options of `network` for `seed` (default: the first of `seeds`)."""
        spec_options = {field.name: getattr(self, field.name) for field in dataclasses.fields(options.TrainingOptions)}
        spec_options.update(self.network_options.get(network, {}))
        spec_options["seed"] = self.seeds[0] if seed is None else seed
        if defence == NULL_CONTROL:
            # The null control is a vanilla network retrained with the next seed.
            spec_options["seed"] += 1
        elif defence is not None:
            spec_options["defence"] = defence
        return spec_options

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
        """Compute every missing model and its float32 predictions (`rzs.zeroshot.PredictionSpec`); prints the grid report.

        One task per model trains it (when it is not stored) and predicts with
        it in the same worker, so no worker starts a second task to read the
        model back.
        """
        specs = [spec for network in networks or self.networks for spec in self.model_specs(network, defence)]
        return self._run(zeroshot.prediction_specs(specs), zeroshot.get_or_predict)

    def train_defences(self):
        """Train (or derive, for test-time defences) every defended network's models and their float32 predictions, one task each."""
        specs = [
            spec
            for defence in self.defence_arms()
            for network in self.defended_networks()
            for spec in self.model_specs(network, defence)
        ]
        return self._run(zeroshot.prediction_specs(specs), zeroshot.get_or_predict)

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
        the full model), classes (C it knows), accuracy_seen (on the `images` test images of its
        own classes) with its Wilson interval (accuracy_ci_low, accuracy_ci_high), classes_predicted (distinct classes it predicts on them), mean_confidence
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
                            "images": hygiene["images"],
                            "classes_predicted": hygiene["classes_predicted"],
                            "mean_confidence": hygiene["mean_confidence"],
                            "excluded_confidence": (
                                float("nan") if excluded is None else float(pairs[excluded][0].max(axis=1).mean())
                            ),
                            "degenerate": hygiene["degenerate"],
                            "reason": hygiene["reason"],
                        }
                    )
        table = pd.DataFrame(rows)
        low, high = analysis.wilson_interval(
            (table["accuracy_seen"] * table["images"]).round(), table["images"], self.alpha
        )
        columns = list(table.columns)
        position = columns.index("images") + 1
        table = table.assign(accuracy_ci_low=low, accuracy_ci_high=high)
        return table[[*columns[:position], "accuracy_ci_low", "accuracy_ci_high", *columns[position:]]]

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
            .assign(quantity=tables.TEST_ACCURACY_QUANTITY)
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
                seed=seed,
                **self.attack_options(),
            )
            for network in networks or self.networks
            for seed in self.seeds
            for attack in (self.attacks_for(defence) if attacks is None else attacks)
        ]

    def attack_options(self):
        """The `rzs.options.AttackOptions` of every attack spec, from the study's `attack_*`."""
        prefix = options.AttackOptions.prefix
        return {field.name: getattr(self, prefix + field.name) for field in dataclasses.fields(options.AttackOptions)}

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
            network_rows.append(accuracy.assign(quantity=tables.TEST_ACCURACY_QUANTITY)[["network", "seed", "defence", "quantity", "value"]])
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
        directory = options.project_path(self.figures_dir) / self.profile
        directory.mkdir(parents=True, exist_ok=True)
        return directory / name

    def save_table(self, frame, name, float_format="%.4g"):
        """Write `frame` as CSV and Markdown to tables/<profile>/; returns the CSV path."""
        directory = options.project_path(self.tables_dir) / self.profile
        directory.mkdir(parents=True, exist_ok=True)
        csv_path = directory / f"{name}.csv"
        frame.to_csv(csv_path, index=False, float_format=float_format)
        (directory / f"{name}.md").write_text(
            frame.to_markdown(index=False, floatfmt=".4g") + "\n"
        )
        return csv_path


def _validate_network_options(network, overrides):
    """One network's `network_options`: training options only, each passing its own check."""
    models.get_spec(network)  # raises a ValueError naming the networks
    checks = {field.name: field.metadata["check"] for field in dataclasses.fields(options.TrainingOptions)}
    for name, value in overrides.items():
        if name not in NETWORK_OPTIONS:
            raise ValueError(
                f"network_options[{network!r}] keys must be among {list(NETWORK_OPTIONS)}, received {name!r}."
            )
        checks[name](value, f"network_options[{network!r}][{name!r}]")
