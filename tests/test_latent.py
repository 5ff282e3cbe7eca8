"""Latent-space maths on constructed cases whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ucl import latent


def blobs(centres, per_class=20, spread=0.01, seed=0):
    rng = np.random.default_rng(seed)
    z = np.concatenate([c + spread * rng.standard_normal((per_class, 2)) for c in centres])
    y = np.repeat(np.arange(len(centres)), per_class)
    return z, y


def test_knn_is_perfect_on_separated_blobs_and_wrong_with_swapped_labels():
    z, y = blobs([(0, 0), (5, 5), (-5, 5)])
    assert (latent.knn_predict(z, y, z + 0.001, k=5) == y).all()
    swapped = (y + 1) % 3  # the training labels say otherwise: every test point is "wrong"
    assert (latent.knn_predict(z, swapped, z, k=5) != y).all()


def test_knn_refuses_more_neighbours_than_training_codes():
    with pytest.raises(ValueError, match="more than the 3 training codes"):
        latent.knn_predict(np.zeros((3, 2)), np.arange(3), np.zeros((1, 2)), k=5)


def test_per_class_accuracy():
    true = np.array([0, 0, 1, 1, 1])
    predicted = np.array([0, 1, 1, 1, 0])
    assert latent.per_class_accuracy(true, predicted, ["a", "b", "c"]) == {"a": 0.5, "b": 2 / 3}


def test_silhouette_matches_a_hand_computation():
    # class 0 at x = 0 and 1, class 1 at x = 10 and 11 (on a line)
    z = np.array([[0.0, 0], [1, 0], [10, 0], [11, 0]])
    y = np.array([0, 0, 1, 1])
    # point 0: a = 1 (to x=1), b = (10 + 11) / 2 = 10.5 -> s = 9.5 / 10.5
    # point 1: a = 1, b = (9 + 10) / 2 = 9.5 -> s = 8.5 / 9.5; class 1 mirrors class 0
    s0 = (9.5 / 10.5 + 8.5 / 9.5) / 2
    mean, per_class = latent.silhouette(z, y)
    assert mean == pytest.approx(s0)
    assert per_class == {0: pytest.approx(s0), 1: pytest.approx(s0)}


def test_silhouette_is_negative_for_interleaved_classes():
    z = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0]])
    y = np.array([0, 1, 0, 1])
    assert latent.silhouette(z, y)[0] < 0


def test_centroids_and_closest_pairs():
    z = np.array([[0.0, 0], [0, 2], [1, 1], [5, 1], [20, 1]])
    y = np.array([0, 0, 1, 2, 3])
    centres = latent.centroids(z, y, num_classes=5)  # class 4 has no sample
    np.testing.assert_allclose(centres[:4], [[0, 1], [1, 1], [5, 1], [20, 1]])
    assert np.isnan(centres[4]).all()
    pairs = latent.closest_pairs(centres, ["a", "b", "c", "d", "e"], top=3)
    assert [(p["a"], p["b"]) for p in pairs] == [("a", "b"), ("b", "c"), ("a", "c")]
    assert [p["distance"] for p in pairs] == pytest.approx([1, 4, 5])


def test_interpolate_includes_both_ends_evenly_spaced():
    a, b = torch.tensor([0.0, 0.0]), torch.tensor([4.0, -8.0])
    path = latent.interpolate(a, b, 5)
    assert path.shape == (5, 2)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(path[2], torch.tensor([2.0, -4.0]))
    with pytest.raises(ValueError, match="steps >= 2"):
        latent.interpolate(a, b, 1)


def test_resolve_class_by_name_short_name_and_index():
    names = ["RBC (Rod Bipolar cell)", "MG (Mueller Glia)", "BC6"]
    assert latent.resolve_class("MG", names) == 1
    assert latent.resolve_class("bc6", names) == 2
    assert latent.resolve_class("RBC (Rod Bipolar cell)", names) == 0
    assert latent.resolve_class(1, names) == 1
    assert latent.resolve_class(4, [str(d) for d in range(10)]) == 4  # digits: the name "4"
    with pytest.raises(ValueError, match="valid classes: 'RBC"):
        latent.resolve_class("BC9", names)


def test_pair_endpoints_are_typical_members_and_distinct_within_a_class():
    z, y = blobs([(0, 0), (5, 5)], per_class=30, spread=1.0)
    ends = latent.pair_endpoints(z, y, [(0, 1), (1, 1)], seed=0)
    (i, j), (k, m) = ends
    assert y[i] == 0 and y[j] == 1 and y[k] == y[m] == 1 and k != m
    for idx in (i, j, k, m):  # within the median distance of its class's centroid
        members = z[y == y[idx]]
        d = np.linalg.norm(members - members.mean(0), axis=1)
        assert np.linalg.norm(z[idx] - members.mean(0)) <= np.median(d) + 1e-12
    assert ends == latent.pair_endpoints(z, y, [(0, 1), (1, 1)], seed=0)  # seeded


def test_random_pairs_follow_the_labels_and_the_seed():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    same = latent.random_pairs(y, 50, same_class=True, seed=3)
    other = latent.random_pairs(y, 50, same_class=False, seed=3)
    assert (y[same[:, 0]] == y[same[:, 1]]).all() and (same[:, 0] != same[:, 1]).all()
    assert (y[other[:, 0]] != y[other[:, 1]]).all()
    np.testing.assert_array_equal(same, latent.random_pairs(y, 50, same_class=True, seed=3))


def test_a_class_of_one_sample_is_never_the_start_of_a_pair_within_a_class():
    y = np.array([0, 0, 0, 1, 2, 2])  # class 1: a single test sample, with no partner
    same = latent.random_pairs(y, 200, same_class=True, seed=0)
    assert 3 not in same and (y[same[:, 0]] == y[same[:, 1]]).all()
    full = np.array([0, 0, 0, 1, 1, 2, 2, 2])  # every class has two: the draws are as before
    np.testing.assert_array_equal(
        latent.random_pairs(full, 50, same_class=True, seed=3)[:3], [[6, 5], [1, 0], [1, 2]]
    )


def test_mean_confidence_of_known_logits():
    class Fixed(torch.nn.Module):
        def forward(self, x):  # row 0: softmax (0.5, 0.5); row 1: ~(1, 0)
            return torch.tensor([[0.0, 0.0], [100.0, 0.0]])[: len(x)]

    assert latent.mean_confidence(Fixed(), torch.zeros(2, 3), chunk=10) == pytest.approx(0.75)


def test_to_2d_keeps_2d_codes_and_projects_a_plane_without_distortion():
    z2 = np.random.default_rng(0).standard_normal((50, 2))
    out, basis = latent.to_2d(z2)
    np.testing.assert_array_equal(out, z2)
    # 3-D points on a tilted plane: the top two principal axes span it, distances survive
    rotation, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))
    z3 = np.hstack([z2 * [3, 1], np.zeros((50, 1))]) @ rotation.T + 7
    flat, basis = latent.to_2d(z3)
    dist = np.linalg.norm(flat[:, None] - flat[None], axis=-1)
    np.testing.assert_allclose(dist, np.linalg.norm(z3[:, None] - z3[None], axis=-1), atol=1e-9)
    again, _ = latent.to_2d(z3[:5], basis)  # other points projected the same way
    np.testing.assert_allclose(again, flat[:5])


def test_codes_and_decodes_in_chunks_match_one_pass():
    enc = torch.nn.Linear(6, 2)
    x = torch.randn(23, 6)
    torch.testing.assert_close(latent.codes_of(enc, x, chunk=5), enc(x).detach())
    dec = torch.nn.Linear(2, 6)
    z = torch.randn(23, 2)
    torch.testing.assert_close(latent.decode_all(dec, z, chunk=4), dec(z).detach())
