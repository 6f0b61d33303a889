"""The names of the study's table columns and quantities, and the one check that a table has them.

A table passes from its producer (``rzs.study``, ``rzs.attacks.results``, ``rzs.analysis``) to
its consumers (``rzs.analysis``, ``rzs.claims``, ``rzs.plots``, ``rzs.predictors``,
``rzs.reliability``, the notebooks) under these names, never renamed on the way, so that a
column can be found by searching for its constant. The CSV files under tables/<profile>/ carry
the same names.

Long tables hold one number per row: key columns say what it is of (``NETWORK``, ``SEED``,
``DEFENCE``, ``ATTACK``, ``TH``, ``METRIC`` or ``QUANTITY``) and ``VALUE`` holds it, with
``CI_LOW``, ``CI_HIGH`` and ``N`` where it is an estimate.
"""

import pandas as pd

# Key columns.
NETWORK = "network"
SEED = "seed"
DEFENCE = "defence"
ATTACK = "attack"
STRATEGY = "strategy"
TH = "th"
METRIC = "metric"
QUANTITY = "quantity"
EXCLUDED_CLASS = "excluded_class"
IMAGE = "image"
PREDICTOR = "predictor"

# An estimate: its value, its interval and what it is over.
VALUE = "value"
CI_LOW = "ci_low"
CI_HIGH = "ci_high"
N = "n"
INTERVAL_COLUMNS = (VALUE, CI_LOW, CI_HIGH)

# ``Study.attack_summary()``: attack accuracy per th over every attacked image (the authors') and
# over the correctly classified ones, with the image counts each share is over.
IMAGES = "images"
ATTACK_ACCURACY = "attack_accuracy"
CORRECT_IMAGES = "correct_images"
ATTACK_ACCURACY_ON_CORRECT = "attack_accuracy_on_correct"
ATTACK_COUNTS = {ATTACK_ACCURACY: IMAGES, ATTACK_ACCURACY_ON_CORRECT: CORRECT_IMAGES}
ATTACK_SUMMARY = (NETWORK, ATTACK, TH, IMAGES, ATTACK_ACCURACY, CORRECT_IMAGES, ATTACK_ACCURACY_ON_CORRECT)

# ``Study.attack_tables()``: one row per attacked image and th.
TRUE_LABEL = "true_label"
ORIGINAL_LABEL = "original_label"
SUCCESS = "success"
ATTACK_TABLE = (IMAGE, TH, TRUE_LABEL, ORIGINAL_LABEL, SUCCESS)

# ``Study.accuracy_table()`` and the covariates of the correlations: the full model's accuracy on
# the test images and its mean largest soft label.
TEST_ACCURACY = "test_accuracy"
MEAN_CONFIDENCE = "mean_confidence"

# Values of the QUANTITY column.
TEST_ACCURACY_QUANTITY = "test accuracy"  # a full model's test accuracy, beside DBM and AM
ROBUSTNESS_QUANTITY = "robustness"  # the pooled robustness outcome of docs/analysis.md

# Long tables read by more than one module.
METRIC_VALUES = (NETWORK, METRIC, VALUE)
METRIC_INTERVALS = (NETWORK, METRIC, *INTERVAL_COLUMNS)
OUTCOME_VALUES = (NETWORK, ATTACK, VALUE)
NETWORK_VALUES = (NETWORK, DEFENCE, QUANTITY, VALUE)
CLASS_VALUES = (NETWORK, DEFENCE, EXCLUDED_CLASS, QUANTITY, VALUE)
SEED_VALUES = (NETWORK, SEED, QUANTITY, VALUE)


def check_columns(frame, required, name):
    """Raise a ValueError naming the table and its missing columns unless `frame` has `required`.

    Tables travel between modules and notebooks as plain DataFrames; checking them where they
    enter a function turns a KeyError deep inside a groupby into a message that says which
    table lacks which column.

    Args:
        frame: the table, a `pandas.DataFrame`.
        required: the column names it must have.
        name: the table as the caller's user knows it (an argument name such as "attack_summary").
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, received {type(frame).__name__}.")
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} must have columns {list(required)}, received {list(frame.columns)}: missing {missing}."
        )
