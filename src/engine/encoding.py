"""Class labels to network targets and network outputs back to labels and probabilities.

A binary problem with a single output unit uses 0/1 targets of shape (n, 1) and the
rule ``output > 0.5``; with ``k > 1`` output units targets are one-hot rows (n, k) and
the predicted class is the argmax.
"""

from __future__ import annotations

import numpy as np


def encode_targets(labels: np.ndarray, n_outputs: int, dtype) -> np.ndarray:
    """Labels (n,) -> targets (n, n_outputs): a 0/1 column for one output, else one-hot rows."""
    if n_outputs == 1:
        return labels.reshape(-1, 1).astype(dtype)
    return np.eye(n_outputs, dtype=dtype)[labels]


def predicted_classes(output: np.ndarray) -> np.ndarray:
    """Network output (..., k) -> the predicted class (...): ``output > 0.5`` (as bool) for
    k == 1, else the argmax. Compares equal to integer labels; the one decision rule."""
    return output[..., 0] > 0.5 if output.shape[-1] == 1 else output.argmax(axis=-1)


def predict_labels(output: np.ndarray) -> np.ndarray:
    """Network output (n, k) -> class labels (n,) as integers."""
    return predicted_classes(output).astype(np.int64, copy=False)


def count_correct(output: np.ndarray, labels: np.ndarray) -> int:
    """How many rows of ``output`` (n, k) ``predict_labels`` gets right against ``labels`` (n,)."""
    return int(np.count_nonzero(predicted_classes(output) == labels))


def class_probabilities(output: np.ndarray, output_activation: str) -> np.ndarray:
    """Network output (n, k) -> class probabilities (n, max(k, 2)).

    One output ``p`` (clipped to [0, 1]) gives ``[1 - p, p]``; a softmax output is already
    a distribution; any other multi-output network is clipped to [0, 1] and normalised
    per row (uniform where a row is all zeros).
    """
    if output.shape[1] == 1:
        p = np.clip(output[:, 0], 0.0, 1.0)
        return np.column_stack([1.0 - p, p])
    if output_activation == "softmax":
        return output
    clipped = np.clip(output, 0.0, 1.0)
    totals = clipped.sum(axis=1, keepdims=True)
    return np.divide(clipped, totals, out=np.full_like(clipped, 1.0 / output.shape[1]), where=totals > 0)
