"""Open-set scores and detection metrics (rzs.open_set), LEEP and NCE (rzs.transfer_estimators)."""

import numpy as np
import pytest
from sklearn import metrics as sklearn_metrics

from rzs import open_set, transfer_estimators


def _sklearn_fpr_at_tpr(inside, outside, tpr=0.95):
    labels = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    false_positive, true_positive, _ = sklearn_metrics.roc_curve(labels, np.r_[inside, outside])
    return false_positive[np.argmax(true_positive >= tpr)]


@pytest.mark.parametrize("seed", range(5))
def test_auroc_and_fpr_agree_with_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    # Rounded so that ties between and within the groups occur.
    inside = np.round(rng.normal(1.0, 1.0, 137), 1)
    outside = np.round(rng.normal(0.0, 1.0, 61), 1)
    labels = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    expected = sklearn_metrics.roc_auc_score(labels, np.r_[inside, outside])
    assert open_set.auroc(inside, outside) == pytest.approx(expected)
    assert open_set.fpr_at_tpr(inside, outside) == pytest.approx(_sklearn_fpr_at_tpr(inside, outside))


def test_perfect_and_reversed_detectors():
    inside, outside = np.array([0.9, 0.8, 0.95]), np.array([0.1, 0.2])
    assert open_set.auroc(inside, outside) == 1.0
    assert open_set.fpr_at_tpr(inside, outside) == 0.0
    assert open_set.auroc(outside, inside) == 0.0
    assert open_set.fpr_at_tpr(outside, inside) == 1.0


def test_probability_scores_order_confident_above_uniform():
    confident = np.array([[0.96, 0.02, 0.02]])
    uniform = np.full((1, 3), 1 / 3)
    for score in (open_set.maximum_softmax_probability, open_set.negative_entropy, open_set.generalized_entropy):
        assert score(confident)[0] > score(uniform)[0]
    assert open_set.negative_entropy(uniform)[0] == pytest.approx(-np.log(3))


def test_logit_scores():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(open_set.maximum_logit(logits), [2.0, 0.0])
    np.testing.assert_allclose(open_set.energy_score(logits)[1], np.log(3))
    assert open_set.energy_score(logits)[0] > open_set.energy_score(logits)[1]


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="probabilities"):
        open_set.maximum_softmax_probability(np.array([[1.5, -0.5]]))
    with pytest.raises(ValueError, match="out_of_distribution_scores"):
        open_set.auroc([0.1], [])
    with pytest.raises(ValueError, match="tpr"):
        open_set.fpr_at_tpr([0.1], [0.2], tpr=0)
    with pytest.raises(ValueError, match="target_labels"):
        transfer_estimators.leep(np.full((2, 2), 0.5), np.array([0.5, 1.0]))


def test_leep_hand_computed():
    # Two images, two source classes, two target classes.
    soft_labels = np.array([[0.8, 0.2], [0.4, 0.6]])
    labels = np.array([0, 1])
    joint = np.array([[0.8, 0.2], [0.4, 0.6]]) / 2
    conditional = joint / joint.sum(axis=0)
    expected = np.mean(
        [np.log(soft_labels[k] @ conditional[labels[k]]) for k in range(2)]
    )
    assert transfer_estimators.leep(soft_labels, labels) == pytest.approx(expected)


def test_nce_hand_computed():
    # Hard source labels 0, 0, 1, 1 against targets 0, 1, 1, 1: H(Y | Z=0) = log 2, H(Y | Z=1) = 0.
    soft_labels = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.1, 0.9]])
    labels = np.array([0, 1, 1, 1])
    assert transfer_estimators.nce(soft_labels, labels) == pytest.approx(-0.5 * np.log(2))


def test_perfectly_predictive_source_scores_zero():
    labels = np.array([0, 1, 2, 0, 1, 2])
    soft_labels = np.eye(3)[labels]
    assert transfer_estimators.nce(soft_labels, labels) == pytest.approx(0.0)
    assert transfer_estimators.leep(soft_labels, labels) == pytest.approx(0.0)


@pytest.mark.parametrize("estimator", [transfer_estimators.leep, transfer_estimators.nce])
def test_estimators_do_not_depend_on_class_numbering(estimator):
    rng = np.random.default_rng(0)
    soft_labels = rng.dirichlet(np.ones(9), size=200)
    labels = rng.integers(0, 10, size=200)
    source_order, target_order = rng.permutation(9), rng.permutation(10)
    assert estimator(soft_labels[:, source_order], target_order[labels]) == pytest.approx(
        estimator(soft_labels, labels)
    )
