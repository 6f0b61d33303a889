"""One study = the notebooks' parameters turned into cached results, tables and figures.

The notebooks stay short: each builds a `Study` from its `parameters` cell and
asks it for what it shows. Every parameter is validated before any compute
starts, with a message naming the parameter, the value and what is allowed.
"""

import dataclasses
from pathlib import Path

import pandas as pd

from rzs import data, metrics, models, robustness, runner, stats, zeroshot
from rzs.store import RunStore
from rzs.training import PRECISIONS, TrainingSpec

VANILLA = "vanilla"  # the defence column's value for undefended networks
# The TrainingSpec fields a study sets for every network, each from its field of the same name;
# the spec's other fields come from the network, the dataset, the class left out and the defence.
TRAINING_OPTIONS = tuple(
    field.name
    for field in dataclasses.fields(TrainingSpec)
    if field.name not in ("network", "dataset", "excluded", "defence")
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
    seed: int = 0  # training and attack seed
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
    # Attacks (rzs.robustness): which, at which budgets th, on how many of the first test
    # images, with which black-box search and budget (the authors': CMA-ES, 400 x 100).
    attacks: list = dataclasses.field(default_factory=lambda: ["pixel", "threshold"])  # also fgsm, bim, pgd, carlini_wagner_l2, deepfool
    thresholds: list = dataclasses.field(default_factory=lambda: [1, 3, 5, 10])  # th: pixels changed (pixel) or largest change on 0-255 (others)
    attack_images: int = 100  # the first test images are attacked (the authors: 1000)
    attack_strategy: str = "cmaes"  # cmaes or de
    attack_population: int = 400  # candidates per generation (the authors: 400)
    attack_generations: int = 100  # generations per image and th (the authors: 100)
    # Defences (rzs.defences): which, and on which networks (None: every network).
    defences: list = dataclasses.field(default_factory=list)  # any of rzs.defences.list_defences()
    defence_networks: list | None = None  # None: every network of the study
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
        if self.metric_images not in ("test", "train"):
            raise ValueError(f"metric_images must be 'test' or 'train', received {self.metric_images!r}.")
        if not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be a number in (0, 1), received {self.alpha!r}.")
        if self.defence_networks is not None:
            unknown = [name for name in self.defence_networks if name not in self.networks]
            if unknown:
                raise ValueError(
                    f"defence_networks {unknown} are not among networks {list(self.networks)}."
                )
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

    def spec_options(self, network, defence=None):
        options = {name: getattr(self, name) for name in TRAINING_OPTIONS}
        options.update(self.network_options.get(network, {}))
        if defence is not None:
            options["defence"] = defence
        return options

    def model_specs(self, network, defence=None):
        """The leave-one-out specs of `network` for the study's classes, then the full model's."""
        return zeroshot.specs_for(
            network, self.dataset, self.classes, **self.spec_options(network, defence)
        )

    def full_spec(self, network, defence=None):
        return self.model_specs(network, defence)[-1]

    def defended_networks(self):
        return self.networks if self.defence_networks is None else list(self.defence_networks)

    def train(self, networks=None, defence=None):
        """Compute every missing model; prints and returns the grid report."""
        specs = [spec for network in networks or self.networks for spec in self.model_specs(network, defence)]
        return self._run(specs, zeroshot.get_or_train)

    def train_defences(self):
        """Train (or derive, for test-time defences) every defended network's models."""
        specs = [
            spec
            for defence in self.defences
            for network in self.defended_networks()
            for spec in self.model_specs(network, defence)
        ]
        return self._run(specs, zeroshot.get_or_train)

    def zero_shot(self, network, defence=None):
        """The stored `RawZeroShot` of `network` (trained by notebook 01, or 05 if defended)."""
        missing = [
            spec for spec in self.model_specs(network, defence) if not self.store.has(spec.kind, spec.config())
        ]
        if missing:
            raise LookupError(
                f"{len(missing)} of {network}'s models (defence {defence}) are not in "
                f"{self.results_dir}; run notebook {'05' if defence else '01'} with the same "
                "parameters first."
            )
        return zeroshot.raw_zero_shot(
            network,
            self.dataset,
            self.store,
            excluded_classes=self.classes,
            **self.spec_options(network, defence),
        )

    def excluded_test_images(self, excluded, count):
        """The first `count` test images of class `excluded` (uint8), in dataset order."""
        _, split = self.full_spec(self.networks[0]).with_excluded(excluded).load_data()
        return split.x_test_excluded[:count]

    def accuracy_table(self, networks=None, defence=None):
        """Test accuracy, parameters and training time of every model, one row each."""
        rows = []
        for network in networks or self.networks:
            for spec in self.model_specs(network, defence):
                record = self.store.load(spec.kind, spec.config()).record
                rows.append(
                    {
                        "network": spec.network,
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
        """DBM and AM per network x excluded class (`rzs.metrics.metrics_table`)."""
        tables = []
        for network in networks or self.networks:
            result = self.zero_shot(network, defence)
            table = metrics.metrics_table(
                result.soft_label_pairs(self.metric_images),
                network,
                result.class_names,
                q=self.metric_q,
                distance=self.am_distance,
                reduce=self.am_reduce,
            )
            tables.append(table.assign(defence=defence or VANILLA))
        return pd.concat(tables, ignore_index=True)

    def attack_specs(self, networks=None, defence=None):
        """One `AttackSpec` per full model of `networks` (default all) and attack."""
        return [
            robustness.AttackSpec(
                model=dataclasses.asdict(self.full_spec(network, defence)),
                attack=attack,
                thresholds=tuple(self.thresholds),
                images=self.attack_images,
                strategy=self.attack_strategy,
                population=self.attack_population,
                generations=self.attack_generations,
                seed=self.seed,
            )
            for network in networks or self.networks
            for attack in self.attacks
        ]

    def attack(self, networks=None, defence=None):
        """Compute every missing attack result; prints and returns the grid report."""
        return self._run(self.attack_specs(networks, defence), robustness.get_or_attack)

    def attack_defences(self):
        """Attack every defended network's full model."""
        specs = [
            spec for defence in self.defences for spec in self.attack_specs(self.defended_networks(), defence)
        ]
        return self._run(specs, robustness.get_or_attack)

    def attack_summary(self, networks=None, defence=None):
        """Attack accuracy per network, attack and th (rzs.attacks.summarize, stored)."""
        rows = []
        for spec in self.attack_specs(networks, defence):
            if not self.store.has(spec.kind, spec.config()):
                raise LookupError(
                    f"The {spec.attack} attack on {spec.model['network']} (defence {defence}) is "
                    f"not in {self.results_dir}; run notebook {'05' if defence else '03'} with the "
                    "same parameters first."
                )
            for row in self.store.load(spec.kind, spec.config()).record["summary"]:
                rows.append({"network": spec.model["network"], "defence": defence or VANILLA, **row})
        return pd.DataFrame(rows)

    def defence_values(self):
        """Vanilla and defended values side by side, the input of `rzs.stats.paired_tests`.

        Returns two long tables with columns network, defence, quantity, value: the metrics
        per network and excluded class (column excluded_class; quantities DBM and AM), and
        attack accuracy and clean test accuracy per network (quantities "<attack> th=<th>"
        and "test accuracy").
        """
        networks = self.defended_networks()
        metric_rows, network_rows = [], []
        for defence in [None, *self.defences]:
            table = self.metrics_table(networks, defence)
            for metric in ("dbm", "am"):
                metric_rows.append(
                    table[["network", "defence", "excluded_class", metric]]
                    .rename(columns={metric: "value"})
                    .assign(quantity=metric.upper())
                )
            attacks = self.attack_summary(networks, defence)
            network_rows.append(
                attacks.assign(quantity=attacks["attack"] + " th=" + attacks["th"].astype("Int64").astype(str))
                .rename(columns={"attack_accuracy": "value"})[["network", "defence", "quantity", "value"]]
            )
            accuracy = self.accuracy_table(networks, defence)
            network_rows.append(
                accuracy[accuracy["excluded_class"].isna()]
                .rename(columns={"test_accuracy": "value"})
                .assign(quantity="test accuracy")[["network", "defence", "quantity", "value"]]
            )
        return pd.concat(metric_rows, ignore_index=True), pd.concat(network_rows, ignore_index=True)

    def defence_tests(self):
        """Paired t and Wilcoxon tests of every defence against vanilla (`rzs.stats.paired_tests`).

        Metrics pair on (network, excluded class), attack and test accuracy on network.
        """
        metric_values, network_values = self.defence_values()
        return pd.concat(
            [
                stats.paired_tests(metric_values, pair_on=("network", "excluded_class")),
                stats.paired_tests(network_values, pair_on=("network",)),
            ],
            ignore_index=True,
        )

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

