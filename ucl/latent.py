"""Latent-space maths: codes of a split, embedding quality, centroids, interpolation paths,
and the end-of-run numbers of a trained encoder/decoder (`latent_metrics`).

The numbers: kNN accuracy in the code space (fitted on the training codes, scored on the
test codes, also per class), silhouette (also per class), the nearest pairs of class
centroids, and -- with a classifier -- how realistic decoded interpolants are: the
classifier's mean top-class probability on points along lines between test codes, split
into pairs of two classes and pairs of one class.

How well the code keeps the pixels' geometry (`neighbourhoods`): scikit-learn's
trustworthiness (Venna & Kaski 2001: do the k nearest codes of a digit hold its k nearest
digits in pixel space?) and the Spearman rank correlation between pixel-space and code-space
distances over all pairs, on the same test digits. And how well the code serves as a source
of new digits (`random_code_quality`): codes drawn from a Gaussian fitted to the training
codes, decoded and judged by the classifier.

The building blocks work on plain tensors/arrays, so they are tested on constructed cases;
the autoencoder and VAE tasks share them (figures live in ucl/plots/latent.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ucl import class_names
from ucl.errors import ConfigError
from ucl.loop import map_chunks


def codes_of(encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int):
    """encode(x) over a whole split in chunks, (N, latent_dim), on the CPU."""
    return map_chunks(lambda xb: encode(xb).cpu(), x, chunk)


def decode_all(decode: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, chunk: int):
    return map_chunks(decode, z, chunk)


# -- embedding quality ------------------------------------------------------------------


def knn_predict(
    train_z: np.ndarray, train_y: np.ndarray, test_z: np.ndarray, k: int = 5
) -> np.ndarray:
    """Majority label of the k nearest training codes (Euclidean) of each test code."""
    from sklearn.neighbors import KNeighborsClassifier

    if k > len(train_z):
        raise ValueError(f"knn k={k} is more than the {len(train_z)} training codes; lower k")
    knn = KNeighborsClassifier(n_neighbors=k).fit(train_z, train_y)
    return knn.predict(test_z)


def per_class_accuracy(true: np.ndarray, predicted: np.ndarray, names: Sequence[str]) -> dict:
    """{class name: fraction of its samples predicted correctly} (classes with samples)."""
    out = {}
    for c, name in enumerate(names):
        mask = true == c
        if mask.any():
            out[str(name)] = float((predicted[mask] == c).mean())
    return out


def silhouette(z: np.ndarray, y: np.ndarray, sample_size: int | None = None, seed: int = 0):
    """Mean silhouette (Rousseeuw 1987): (b - a) / max(a, b) per point, a = mean distance to
    its own class, b = to the nearest other class; in [-1, 1], higher = better separated.
    Returns (mean, {class index: mean over that class's points}). `sample_size` bounds the
    O(N^2) cost by scoring a seeded random subset."""
    from sklearn.metrics import silhouette_samples

    if len(np.unique(y)) < 2:
        raise ValueError("the silhouette needs at least two classes among the codes")
    if sample_size is not None and sample_size < len(z):
        idx = np.random.default_rng(seed).choice(len(z), sample_size, replace=False)
        z, y = z[idx], y[idx]
    s = silhouette_samples(z, y)
    return float(s.mean()), {int(c): float(s[y == c].mean()) for c in np.unique(y)}


def centroids(z: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean code of each class, (num_classes, latent_dim); NaN rows for absent classes."""
    out = np.full((num_classes, z.shape[1]), np.nan)
    for c in range(num_classes):
        if (y == c).any():
            out[c] = z[y == c].mean(0)
    return out


def closest_pairs(centres: np.ndarray, names: Sequence[str], top: int) -> list[dict]:
    """The `top` pairs of classes whose centroids are nearest, nearest first:
    [{"a": name, "b": name, "distance": d}, ...]; classes without a centroid are skipped."""
    present = [i for i in range(len(centres)) if np.isfinite(centres[i]).all()]
    pairs = []
    for n, i in enumerate(present):
        for j in present[n + 1 :]:
            d = float(np.linalg.norm(centres[i] - centres[j]))
            pairs.append({"a": str(names[i]), "b": str(names[j]), "distance": d})
    pairs.sort(key=lambda p: p["distance"])
    return pairs[:top]


# -- interpolation ----------------------------------------------------------------------


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` evenly spaced points on the segment from z_a to z_b, both ends included,
    (steps, latent_dim)."""
    if steps < 2:
        raise ValueError(f"interpolation needs steps >= 2 (both ends), got {steps}")
    t = torch.linspace(0, 1, steps, dtype=z_a.dtype, device=z_a.device)[:, None]
    return (1 - t) * z_a + t * z_b


def resolve_class(spec, names: Sequence[str]) -> int:
    """A class given by name ("4", "RBC (Rod Bipolar cell)"), by short name (the part
    before " (": "RBC"), or by index (an int that is not a class name)."""
    text = str(spec)
    for i, name in enumerate(names):
        if text == name:
            return i
    short = [class_names.short(name).lower() for name in names]
    if text.strip().lower() in short:
        return short.index(text.strip().lower())
    if isinstance(spec, int) and 0 <= spec < len(names):
        return spec
    raise ValueError(
        f"interpolation pair names class {spec!r}, which this data does not have; "
        f"valid classes: {', '.join(map(repr, names))} (or an index 0..{len(names) - 1})"
    )


def interpolation_pairs(lcfg, data) -> list[tuple[int, int]]:
    """The configured class pairs as class indices, each with both its ends among the test
    samples (two members for a pair within one class). The tasks call it before training."""
    names, y = list(data.class_names), data.y_test.cpu().numpy()
    key = "task_settings.latent.interpolation.pairs"
    try:
        pairs = [tuple(resolve_class(c, names) for c in pair) for pair in lcfg.interpolation.pairs]
    except ValueError as e:
        raise ConfigError(f"{key}: {e}") from e
    for a, b in pairs:
        if not has_ends(y, [(a, b)]):
            need = "two test samples" if a == b else "a test sample of each class"
            raise ConfigError(
                f"{key}: the pair [{names[a]}, {names[b]}] needs {need}, and the "
                f"{len(y)} test samples do not hold them; drop the pair, or give more test "
                f"samples (dataset.test_subset=null for all)"
            )
    return pairs


def check_against_data(lcfg, data) -> None:
    """What the latent settings need of the data, checked before the run's first write: the
    pairs' ends among the test samples, and codes enough for the neighbourhood measures."""
    interpolation_pairs(lcfg, data)
    n, k = min(int(lcfg.points), len(data.y_test)), int(lcfg.knn_k)
    if not n > 2 * k:  # trustworthiness needs k < n / 2
        raise ConfigError(
            f"task_settings.latent.points={lcfg.points}: the {n} test codes shown are too few "
            f"for the neighbourhood measures, which compare each code's knn_k={k} nearest and "
            f"need more than {2 * k}; e.g. task_settings.latent.points=1000"
        )


def has_ends(y: np.ndarray, pairs: Sequence[tuple[int, int]]) -> bool:
    """Whether labels y hold both ends of every pair (two members for a pair within a class)."""
    return all(
        np.count_nonzero(y == a) >= 1 + (a == b) and np.count_nonzero(y == b) >= 1 for a, b in pairs
    )


def typical_member(
    z: np.ndarray, y: np.ndarray, c: int, rng: np.random.Generator, exclude: int = -1
) -> int:
    """Index of a random member of class c among the half closest to the class centroid
    (a typical example, not an outlier); `exclude` keeps the two ends of a within-class
    pair apart."""
    members = np.flatnonzero(y == c)
    members = members[members != exclude]
    if len(members) == 0:
        raise ValueError(f"class index {c} has no (other) test sample to interpolate from")
    d = np.linalg.norm(z[members] - z[members].mean(0), axis=1)
    near = members[d <= np.median(d)]
    return int(rng.choice(near))


def pair_endpoints(
    z: np.ndarray, y: np.ndarray, pairs: Sequence[tuple[int, int]], seed: int
) -> list[tuple[int, int]]:
    """For each (class a, class b), the indices of two typical members (distinct when a == b)."""
    rng = np.random.default_rng(seed)
    out = []
    for a, b in pairs:
        i = typical_member(z, y, a, rng)
        out.append((i, typical_member(z, y, b, rng, exclude=i)))
    return out


def random_pairs(y: np.ndarray, n: int, same_class: bool, seed: int) -> np.ndarray:
    """n pairs of sample indices (n, 2), drawn from the labels alone (so two models scored
    on the same test set get the same pairs): of one class when same_class, else of two
    different classes."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 2), dtype=np.int64)
    _, index, counts = np.unique(y, return_inverse=True, return_counts=True)
    partners = counts[index] - 1 if same_class else len(y) - counts[index]
    starts = np.flatnonzero(partners > 0)  # a class of one sample has none within it
    if len(starts) == 0:
        raise ValueError("no partner for an interpolation pair: too few test samples")
    for k in range(n):
        i = int(starts[rng.integers(len(starts))])  # starts[j] == j when all have partners
        pool = np.flatnonzero((y == y[i]) if same_class else (y != y[i]))
        out[k] = (i, int(rng.choice(pool[pool != i])))
    return out


# -- classifier judgement and 2-D views -------------------------------------------------


def mean_confidence(classifier: torch.nn.Module, x: torch.Tensor, chunk: int) -> float:
    """Mean top-class softmax probability the classifier gives the rows of x."""
    top = map_chunks(lambda xb: torch.softmax(classifier(xb), dim=1).amax(1), x, chunk)
    return float(top.mean())


def to_2d(z: np.ndarray, basis: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Codes for a 2-D plot: themselves when 2-D, else their projection on the top two
    principal axes. Returns (z_2d (N, 2), basis) where basis = (mean, axes) packed as a
    (3, D) array, reusable to project other points (interpolation paths) the same way."""
    if z.shape[1] == 2 and basis is None:
        return z, np.vstack([np.zeros(2), np.eye(2)])
    if z.shape[1] == 1:
        return np.hstack([z, np.zeros_like(z)]), np.array([[0.0], [1.0], [0.0]])
    if basis is None:
        mean = z.mean(0)
        _, _, vt = np.linalg.svd(z - mean, full_matrices=False)
        basis = np.vstack([mean, vt[:2]])
    return (z - basis[0]) @ basis[1:].T, basis


@dataclass
class Coder:
    """What the report needs of a model: encode (B, D) -> (B, d) and decode (B, d) -> (B, D)
    (for a VAE, encode gives the posterior mean)."""

    encode: Callable[[torch.Tensor], torch.Tensor]
    decode: Callable[[torch.Tensor], torch.Tensor]

    @classmethod
    def of(cls, model: torch.nn.Module) -> Coder:
        return cls(model.encode, model.decode)


# -- the end-of-run numbers of an encoder/decoder ---------------------------------------


def latent_metrics(coder: Coder, data, lcfg, chunk: int, seed: int, classifier=None) -> dict:
    """Embedding-quality metrics of `coder` on `data` (see the module docstring).

    lcfg: the `task_settings.latent` config node. Keys: latent/knn_accuracy,
    latent/knn_accuracy_per_class, latent/silhouette, latent/silhouette_per_class,
    latent/closest_pairs; with a classifier, interpolation/confidence (all interior points),
    interpolation/confidence_between, interpolation/confidence_within and
    interpolation/confidence_ends (the decoded end points themselves, for reference).
    """
    names = list(data.class_names)
    z_train = codes_of(coder.encode, data.x_train, chunk).numpy()
    z_test = codes_of(coder.encode, data.x_test, chunk).numpy()
    y_train, y_test = data.y_train.cpu().numpy(), data.y_test.cpu().numpy()

    predicted = knn_predict(z_train, y_train, z_test, int(lcfg.knn_k))
    sil, sil_per_class = silhouette(z_test, y_test, lcfg.get("silhouette_size"), seed=seed)
    centres = centroids(z_train, y_train, len(names))
    metrics = {
        "latent/knn_accuracy": float((predicted == y_test).mean()),
        "latent/silhouette": sil,
        "latent/knn_accuracy_per_class": per_class_accuracy(y_test, predicted, names),
        "latent/silhouette_per_class": {names[c]: v for c, v in sil_per_class.items()},
        "latent/closest_pairs": closest_pairs(centres, names, int(lcfg.closest_pairs)),
    }
    n = min(int(lcfg.points), len(data.x_test))  # the digits the embedding figure shows
    x_shown = data.x_test[:n].flatten(1).cpu().numpy()
    metrics.update(neighbourhoods(x_shown, z_test[:n], int(lcfg.knn_k)))
    if classifier is not None:
        metrics.update(interpolation_confidence(coder, data, lcfg, chunk, seed, classifier))
        metrics.update(random_code_quality(coder, z_train, n, seed, classifier, chunk))
    return metrics


def neighbourhoods(x: np.ndarray, z: np.ndarray, k: int) -> dict:
    """How well codes z (N, d) keep the geometry of their inputs x (N, D):
    latent/trustworthiness (1: the k nearest codes of every point are among its k nearest
    inputs; about 0.5 for a random embedding) and latent/distance_rank_correlation (the
    Spearman correlation of all N(N-1)/2 pairwise distances in the two spaces)."""
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr
    from sklearn.manifold import trustworthiness

    if not 0 < k < len(x) / 2:
        raise ValueError(f"trustworthiness needs 0 < k < N/2; got k={k} for N={len(x)} points")
    rho = spearmanr(pdist(x), pdist(z)).statistic
    return {
        "latent/trustworthiness": float(trustworthiness(x, z, n_neighbors=k)),
        "latent/distance_rank_correlation": float(rho),
    }


def random_code_quality(
    coder: Coder, z_train: np.ndarray, n: int, seed: int, classifier: torch.nn.Module, chunk: int
) -> dict:
    """Decode n codes drawn from a Gaussian fitted to the training codes (mean and full
    covariance) and judge them: random_codes/confidence (mean top-class probability) and
    random_codes/classes (how many classes the decoded digits fall in). A plain
    autoencoder is trained to reconstruct, not to fill its code space, so this shows how
    much of the space around its codes decodes to digits."""
    rng = np.random.default_rng(seed)
    mean, cov = z_train.mean(0), np.atleast_2d(np.cov(z_train, rowvar=False))
    z = torch.from_numpy(rng.multivariate_normal(mean, cov, size=n)).float()
    device = next(classifier.parameters(), torch.empty(0)).device
    images = decode_all(coder.decode, z.to(device), chunk)
    return random_codes_judged(classifier, images, chunk, "random_codes")


def random_codes_judged(classifier, images: torch.Tensor, chunk: int, prefix: str) -> dict:
    """{prefix}/confidence and {prefix}/classes (distinct argmax classes) of decoded images."""
    probs = map_chunks(lambda xb: torch.softmax(classifier(xb), dim=1), images, chunk)
    return {
        f"{prefix}/confidence": float(probs.amax(1).mean()),
        f"{prefix}/classes": float(len(torch.unique(probs.argmax(1)))),
    }


def interpolation_confidence(coder: Coder, data, lcfg, chunk: int, seed: int, classifier):
    """The classifier's mean confidence on decoded interpolants between random test pairs.

    The pairs come from the labels alone (`random_pairs`), so two models scored on
    the same test set with the same seed are judged on the same pairs of digits.
    """
    icfg = lcfg.interpolation
    steps, n = int(icfg.steps), int(icfg.eval_pairs)
    y = data.y_test.cpu().numpy()
    out = {}
    interior, ends = [], []
    for kind, same in (("between", False), ("within", True)):
        pairs = random_pairs(y, n, same_class=same, seed=seed)
        idx = torch.from_numpy(pairs).flatten().to(data.x_test.device)
        z = codes_of(coder.encode, data.x_test[idx], chunk)
        z = z.reshape(n, 2, -1)
        paths = torch.stack([interpolate(a, b, steps) for a, b in z])  # (n, steps, d)
        decoded = decode_all(coder.decode, paths.flatten(0, 1).to(data.x_test.device), chunk)
        decoded = decoded.reshape(n, steps, -1)
        interior.append(decoded[:, 1:-1].flatten(0, 1))
        ends.append(decoded[:, [0, -1]].flatten(0, 1))
        out[f"interpolation/confidence_{kind}"] = mean_confidence(classifier, interior[-1], chunk)
    judge = mean_confidence
    out["interpolation/confidence"] = judge(classifier, torch.cat(interior), chunk)
    out["interpolation/confidence_ends"] = judge(classifier, torch.cat(ends), chunk)
    return out
