"""Deterministic synthetic data sets for ``python -m fastsoftmax demo`` (no download).

Both generators are pure NumPy and seeded: the same arguments give the same arrays on
every machine (``numpy.random.default_rng(seed)``; PCG64 and the normal / uniform
samplers are stable across NumPy versions for a given seed).
"""

import numpy as np

__all__ = ["make_clusters", "make_multilabel", "make_zipf_linear", "train_test_split"]


def make_clusters(n_samples, n_features, n_classes, *, clusters_per_class=2, noise=1.0, seed=0,
                  dtype=np.float32):
    """A mixture of Gaussian clusters, several per class: a multi-class problem.

    Each class owns ``clusters_per_class`` cluster centres drawn from a standard normal
    in ``n_features`` dimensions, scaled so that neighbouring centres overlap at
    ``noise`` (the clusters' standard deviation).  A sample picks a class uniformly, one
    of its clusters, and adds isotropic Gaussian noise.  With more than one cluster per
    class the classes are not linearly separable: a hidden layer helps.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), ``dtype``
    y : ndarray of shape (n_samples,), int64 class indices in ``[0, n_classes)``
    """
    rng = np.random.default_rng([seed, 1])
    n_centres = n_classes * clusters_per_class
    # Distance between random standard-normal centres is about sqrt(2 * d); rescale it to
    # a few noise widths whatever the dimension, so the task is neither trivial nor hopeless.
    centres = rng.standard_normal((n_centres, n_features)) * (3.0 * noise / np.sqrt(n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    cluster = y * clusters_per_class + rng.integers(0, clusters_per_class, size=n_samples)
    X = centres[cluster] + noise / np.sqrt(n_features) * rng.standard_normal((n_samples, n_features))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(dtype), y.astype(np.int64)


def make_multilabel(n_samples, n_features, n_labels, *, n_topics=None, labels_per_topic=4, noise=1.0,
                    label_noise=0.05, seed=0, dtype=np.float32):
    """Multi-label data ("topics with tags"): each sample has the tags of its topic, with noise.

    The samples are :func:`make_clusters` data with ``n_topics`` classes (default
    ``n_labels // 2``), the topics.  Each topic owns ``labels_per_topic`` of the
    ``n_labels`` tags (every tag belongs to at least one topic; the others are drawn at
    random).  A sample carries its topic's tags, each dropped with probability
    ``label_noise``, plus spurious tags at the same expected count.  A label is then a
    union of Gaussian clusters in feature space: a hidden layer helps, and the noise caps
    the reachable F1 below 1.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), ``dtype``
    Y : ndarray of shape (n_samples, n_labels), ``dtype`` 0/1 targets
    """
    n_topics = max(1, n_labels // 2) if n_topics is None else n_topics
    X, topic = make_clusters(n_samples, n_features, n_topics, noise=noise, seed=seed, dtype=dtype)
    rng = np.random.default_rng([seed, 2])
    tags = np.zeros((n_topics, n_labels), dtype=bool)
    tags[np.arange(n_labels) % n_topics, np.arange(n_labels)] = True  # every tag in some topic
    for t in range(n_topics):
        missing = labels_per_topic - int(tags[t].sum())
        if missing > 0:
            free = np.flatnonzero(~tags[t])
            tags[t, rng.choice(free, size=min(missing, free.size), replace=False)] = True
    Y = tags[topic]
    n_tags = Y.sum(axis=1, keepdims=True)
    dropped = rng.random(Y.shape) < label_noise
    spurious = rng.random(Y.shape) < label_noise * n_tags / n_labels
    Y = (Y & ~dropped) | (~Y & spurious)
    return X, Y.astype(dtype)


def make_zipf_linear(n_samples, n_features, n_classes, *, exponent=1.0, teacher_scale=0.5, seed=0,
                     dtype=np.float32):
    """Many classes with Zipf frequencies, and inputs from a linear teacher: for sampled softmax.

    Class ``c`` is drawn with probability proportional to ``1 / (c + 1) ** exponent``, so class 0
    is the most frequent (the order the log-uniform candidate sampler assumes).  Each class has
    a teacher vector ``T[c] ~ teacher_scale * N(0, I)``, and a sample of class ``y`` is ``x =
    T[y] + N(0, I)``: the true posterior is a softmax of a linear function of ``x`` (a softmax
    regression can represent it).  The rows are independent draws: any split of them is a
    train / test split.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), ``dtype``
    y : ndarray of shape (n_samples,), int64 class indices in ``[0, n_classes)``
    """
    rng = np.random.default_rng([seed, 7])
    teacher = teacher_scale * rng.standard_normal((n_classes, n_features))
    prior = 1.0 / np.arange(1, n_classes + 1) ** exponent
    y = rng.choice(n_classes, size=n_samples, p=prior / prior.sum())
    X = teacher[y] + rng.standard_normal((n_samples, n_features))
    return X.astype(dtype), y.astype(np.int64)


def train_test_split(X, y, test_fraction=0.2):
    """The first ``1 - test_fraction`` of the rows for training, the rest for testing
    (the generators above already draw the rows in random order)."""
    n_test = int(round(len(X) * test_fraction))
    n_train = len(X) - n_test
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]
