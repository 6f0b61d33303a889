"""Transferability estimators computed from soft labels: LEEP and NCE.

Both ask how well a source classifier's outputs predict the labels of a target task without
training anything. Here the source is a leave-one-out model C_-i (N-1 source classes z) and the
target task is the whole N-class test set with its true labels y, the excluded class included:
a model whose outputs separate the unseen class from the others, and the others from each
other, scores higher.

With theta(x) the source model's soft labels (rows of an `(n, Z)` array) and y_k the true label
of image k:

- LEEP (Nguyen et al., ICML 2020): the empirical joint P(y, z) = (1/n) sum_{k: y_k = y}
  theta(x_k)_z and conditional P(y | z) = P(y, z) / sum_y' P(y', z) give the "expected empirical
  predictor" sum_z P(y | z) theta(x)_z, and

      LEEP = (1/n) sum_k log( sum_z P(y_k | z) theta(x_k)_z ).

- NCE (Tran et al., ICCV 2019): with hard source labels z_k = argmax_z theta(x_k)_z and the
  empirical joint of (y, z) counts,

      NCE = -H(Y | Z) = sum_{y, z} P(y, z) log P(y | z).

Both are <= 0, higher is more transferable, and neither depends on how the classes are
numbered.
"""

import numpy as np


def leep(source_soft_labels, target_labels):
    """LEEP of source soft labels `(n, Z)` for integer target labels `(n,)`; see the module docstring."""
    soft_labels, labels = _check_inputs(source_soft_labels, target_labels)
    num_target_classes = labels.max() + 1
    joint = np.zeros((num_target_classes, soft_labels.shape[1]))
    np.add.at(joint, labels, soft_labels)
    joint /= len(labels)
    source_marginal = joint.sum(axis=0, keepdims=True)
    conditional = np.divide(joint, source_marginal, out=np.zeros_like(joint), where=source_marginal > 0)
    # The expected empirical predictor's probability of each image's own label.
    predicted = np.einsum("kz,kz->k", soft_labels, conditional[labels])
    return float(np.mean(np.log(np.maximum(predicted, np.finfo("float64").tiny))))


def nce(source_soft_labels, target_labels):
    """NCE = -H(Y | Z) of hard source labels argmax `(n, Z)` for target labels `(n,)`."""
    soft_labels, labels = _check_inputs(source_soft_labels, target_labels)
    source_labels = soft_labels.argmax(axis=1)
    joint = np.zeros((labels.max() + 1, soft_labels.shape[1]))
    np.add.at(joint, (labels, source_labels), 1.0)
    joint /= len(labels)
    source_marginal = joint.sum(axis=0, keepdims=True)
    present = joint > 0
    conditional = np.divide(joint, source_marginal, out=np.ones_like(joint), where=present)
    return float(np.sum(joint[present] * np.log(conditional[present])))


def _check_inputs(source_soft_labels, target_labels):
    soft_labels = np.asarray(source_soft_labels, dtype="float64")
    labels = np.asarray(target_labels)
    if soft_labels.ndim != 2 or soft_labels.shape[0] == 0:
        raise ValueError(
            "Expected `source_soft_labels` of shape (num_images, num_source_classes). "
            f"Received: source_soft_labels.shape={soft_labels.shape}"
        )
    if soft_labels.min() < 0 or not np.allclose(soft_labels.sum(axis=1), 1, atol=1e-3):
        raise ValueError("Expected every row of `source_soft_labels` to be a probability vector.")
    if labels.shape != (len(soft_labels),) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(
            f"Expected `target_labels` to be {len(soft_labels)} non-negative integers. "
            f"Received: target_labels.shape={labels.shape}, dtype={labels.dtype}"
        )
    return soft_labels, labels.astype("int64")
