import numpy as np

from matchmaker.matching.ranking import RankParams, centre, neighbour_bonus


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_centring_keeps_the_ensemble_a_weighted_sum_of_centred_cosines():
    """After centring, is the inner product of two ensemble vectors still 0.35·cos_A + 0.65·cos_B, now of
    the centred member vectors?"""
    rng = np.random.default_rng(1)
    a, b = _unit(rng.normal(size=(2, 4))), _unit(rng.normal(size=(2, 3)))
    weights = (0.35, 0.65)
    joined = np.hstack([a * np.sqrt(weights[0]), b * np.sqrt(weights[1])]).astype(np.float32)
    mean_a, mean_b = rng.normal(size=4) * 0.3, rng.normal(size=3) * 0.3
    mean = np.concatenate([mean_a * np.sqrt(weights[0]), mean_b * np.sqrt(weights[1])])
    segments = ((0, 4, weights[0]), (4, 7, weights[1]))
    c = centre(joined, mean, segments)
    expected = (weights[0] * _unit(a[0] - mean_a) @ _unit(a[1] - mean_a)
                + weights[1] * _unit(b[0] - mean_b) @ _unit(b[1] - mean_b))
    assert c[0] @ c[1] == np.float32(expected) or abs(c[0] @ c[1] - expected) < 1e-5
    assert np.allclose(np.linalg.norm(c[:, :4], axis=1), np.sqrt(weights[0]), atol=1e-6)


def test_centring_demotes_a_hub():
    """Does a doc that sits on the population's common direction stop beating the doc that fits the query?"""
    common = np.array([1.0, 0, 0, 0])
    hub = _unit(common + np.array([0, 0.1, 0, 0]))           # close to everything
    fit = _unit(common * 0.6 + np.array([0, 0, 1.0, 0]))     # the one that shares the query's own part
    other = _unit(common + np.array([0, 0, 0, 0.5]))
    docs = np.stack([hub, fit, other]).astype(np.float32)
    query = _unit(common + np.array([0, 0, 0.35, 0]))[None, :].astype(np.float32)
    assert int(np.argmax(query @ docs.T)) == 0               # raw cosine: the hub wins
    seg = ((0, 4, 1.0),)
    centred = centre(query, common * 0.9, seg) @ centre(docs, docs.mean(0), seg).T
    assert int(np.argmax(centred)) == 1


def test_centring_without_a_mean_changes_nothing():
    """With no population yet (mean None), are vectors passed through untouched?"""
    x = _unit(np.random.default_rng(2).normal(size=(3, 5))).astype(np.float32)
    assert np.array_equal(centre(x, None, ((0, 5, 1.0),)), x)


def test_neighbour_bonus_favours_a_doc_among_good_neighbours():
    """Does a candidate whose nearest fellow candidates score well gain, and one among poor ones lose?"""
    rng = np.random.default_rng(3)
    noise = np.zeros((10, 16))
    noise[:, 2:] = 0.2 * rng.normal(size=(10, 14))
    on_topic = _unit(np.eye(16)[0] + noise[:5])      # five docs on one topic
    elsewhere = _unit(np.eye(16)[1] + noise[5:])     # five on another
    vectors = np.vstack([on_topic, elsewhere]).astype(np.float32)
    scores = np.array([2.0, 1.8, 1.7, 1.6, 1.5, 2.0, -0.5, -0.4, -0.6, -0.3], np.float32)
    bonus = neighbour_bonus(scores, vectors, RankParams(smooth_k=3, smooth_weight=0.3))
    assert 0.3 * 1.6 - 1e-5 <= bonus[0] <= 0.3 * 1.7 + 1e-5   # three of its four topic mates
    assert bonus[5] < 0 < bonus[0]                              # same score, worse company


def test_neighbour_bonus_off_and_tiny_pools():
    """Is smoothing a no-op when switched off or with fewer than three candidates?"""
    v = np.eye(3, dtype=np.float32)
    assert not neighbour_bonus(np.ones(3, np.float32), v, RankParams(smooth_k=0)).any()
    assert not neighbour_bonus(np.ones(2, np.float32), v[:2], RankParams()).any()
