"""The Frechet distance between two sets of features: how far generated images are from real
ones, as seen by a classifier (the FID of Heusel et al. 2017 when the features are Inception's).

    distance = zoo.fid.frechet_distance(features(generated_images), features(real_images))

0 for identical sets, growing as the two distributions move apart. SciPy is imported only
when a distance is computed.
"""

from __future__ import annotations

import warnings

import numpy as np


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (rows are examples):
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``, the FID of Heusel et al. (2017)
    when the features are Inception's; here any classifier's features."""
    from scipy import linalg

    features_a, features_b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"frechet_distance takes two (examples, features) arrays with the same feature count; "
                         f"got {features_a.shape} and {features_b.shape}")
    if min(len(features_a), len(features_b)) < 2:
        raise ValueError("frechet_distance needs at least 2 examples in each set to estimate a covariance")
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    with warnings.catch_warnings():  # singular products (constant features) are handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # a singular product: nudge both covariances, as Heusel et al.'s code does
        offset = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = root.real
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))
