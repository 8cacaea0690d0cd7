"""LogME: the log of the maximum evidence of a linear model on frozen features (You et al., ICML 2021).

For features ``F`` (n x d) and one target column ``y`` (n), Bayesian linear regression with prior
``w ~ N(0, alpha^-1 I)`` and noise ``y | F, w ~ N(F w, beta^-1 I)`` has the evidence

    log p(y | F, alpha, beta) = log N(y; 0, beta^-1 I + alpha^-1 F F^T)

LogME is its maximum over ``alpha, beta``, divided by ``n``; for a classification target it is the mean over
the one-hot columns of the labels. Higher means the labels are easier to fit linearly from the features,
which is what makes it a cheap forecast of fine-tuning transfer.

The maximum is found by the MacKay fixed-point iteration in the SVD basis of ``F`` (the form of You et al.'s
arXiv 2110.10545): with ``F = U S V^T``, ``x = U^T y`` and ``sigma = S^2``,

    gamma = sum sigma / (sigma + alpha / beta)
    alpha = gamma / |m|^2,    beta = (n - gamma) / |y - F m|^2,    m = beta (alpha I + beta F^T F)^-1 F^T y

iterated to a relative change of ``alpha / beta`` below ``tol`` (the reference code stops after at most 11
iterations at 1e-3; running to 1e-7 reaches the maximum to within float rounding). Written here because the
PyPI package called ``logme`` is an unrelated logging tool; tests check it against a case worked by hand and
against a direct maximisation of the Gaussian marginal likelihood (tests/test_forecast.py).
"""

from __future__ import annotations

import math

import numpy as np


def _svd(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(U, sigma = singular values squared) of ``features``, thin, without the null directions."""
    n, d = features.shape
    if n > d:  # the d x d Gram matrix is cheaper than an n x d SVD
        evals, vecs = np.linalg.eigh(features.T @ features)
        keep = evals > max(evals.max(), 0.0) * 1e-12
        sigma, vecs = evals[keep], vecs[:, keep]
        u = features @ vecs / np.sqrt(sigma)
    else:
        u, s, _ = np.linalg.svd(features, full_matrices=False)
        keep = s > max(s.max(initial=0.0), 0.0) * 1e-6
        u, sigma = u[:, keep], s[keep] ** 2
    return u, sigma


def _evidence(y: np.ndarray, u: np.ndarray, sigma: np.ndarray, d: int, *, max_iter: int, tol: float) -> dict:
    """Maximum evidence of one target column; returns ``{"evidence", "alpha", "beta", "iterations"}``."""
    n = y.shape[0]
    x2 = (u.T @ y) ** 2
    rest = float(y @ y - x2.sum())  # the part of y outside the span of F: residual whatever alpha, beta
    alpha, beta = 1.0, 1.0
    for it in range(1, max_iter + 1):
        t = alpha / beta
        gamma = float((sigma / (sigma + t)).sum())
        m2 = float((sigma * x2 / (sigma + t) ** 2).sum())  # |m|^2
        res2 = float((x2 * (t / (sigma + t)) ** 2).sum()) + rest  # |y - F m|^2
        alpha = gamma / max(m2, 1e-300)
        beta = (n - gamma) / max(res2, 1e-300)
        if abs(alpha / beta - t) <= tol * t:
            break
    t = alpha / beta
    m2 = float((sigma * x2 / (sigma + t) ** 2).sum())
    res2 = float((x2 * (t / (sigma + t)) ** 2).sum()) + rest
    # log det(alpha I_d + beta F^T F): the d - k null directions of F contribute log(alpha) each
    logdet = float(np.log(alpha + beta * sigma).sum()) + (d - sigma.size) * math.log(alpha)
    ev = (d / 2 * math.log(alpha) + n / 2 * math.log(beta) - logdet / 2 - beta / 2 * res2 - alpha / 2 * m2
          - n / 2 * math.log(2 * math.pi))
    return {"evidence": ev / n, "alpha": alpha, "beta": beta, "iterations": it}


def logme(features, labels, *, regression: bool = False, max_iter: int = 1000, tol: float = 1e-7,
          details: bool = False):
    """LogME of ``labels`` given ``features``.

    Args:
        features: (n, d) array of frozen features, one row per example.
        labels: classification: (n,) integer class ids (each class present becomes one one-hot column);
            regression: (n,) or (n, k) real targets, one column each.
        regression: treat ``labels`` as real-valued.
        details: also return each column's ``alpha``, ``beta`` and evidence.

    Returns:
        The mean over columns of the maximum log evidence per example (a float; higher is better), or
        ``(score, [per-column dicts])`` with ``details``.
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be an (n >= 2, d) array, got shape {f.shape}")
    y = np.asarray(labels)
    if y.shape[0] != f.shape[0]:
        raise ValueError(f"{f.shape[0]} feature rows but {y.shape[0]} labels")
    if regression:
        cols = y.astype(np.float64).reshape(f.shape[0], -1).T
    else:
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError("classification LogME needs at least two classes in the labels")
        cols = (y[None, :] == classes[:, None]).astype(np.float64)
    u, sigma = _svd(f)
    per = [_evidence(c, u, sigma, f.shape[1], max_iter=max_iter, tol=tol) for c in cols]
    score = float(np.mean([p["evidence"] for p in per]))
    return (score, per) if details else score
