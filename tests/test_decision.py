"""The expected-loss decision rule: closed forms and fabricated posteriors (no sampling)."""

import numpy as np
import pytest
from conftest import fabricate
from scipy import stats

from bayesconv.readout import compare
from bayesconv.readout.decision import decide, expected_losses, log_bayes_factor


@pytest.fixture(scope="module")
def model(three_arm_model):
    return three_arm_model


def _fab(model, means, sd=0.02, draws=2000):
    return fabricate(model, np.asarray(means), [5.0, 5.0, 5.0], 2.0, chains=2, draws=draws,
                     rate_sd=sd, labels=["A", "B", "C"])


def test_expected_loss_matches_the_normal_closed_form():
    # For Δ = θ_T − θ_C ~ Normal(μ, σ²), E[max(0, −Δ)] = σ φ(μ/σ) − μ Φ(−μ/σ) (the normal
    # loss function; e.g. Raiffa & Schlaifer 1961, Applied Statistical Decision Theory, §A.2)
    rng = np.random.default_rng(0)
    mu, sigma = 0.004, 0.006
    c = rng.normal(0.10, 0.01, 400_000)
    t = c + rng.normal(mu, sigma, c.size)           # Δ = t − c ~ Normal(μ, σ²)
    loss = expected_losses(np.stack([c, t]))
    z = mu / sigma
    closed_t = sigma * stats.norm.pdf(z) - mu * stats.norm.cdf(-z)
    closed_c = closed_t + mu                        # E[max(0, Δ)] = E[max(0, −Δ)] + E[Δ]
    np.testing.assert_allclose(loss, [closed_c, closed_t], rtol=0.02)


def test_decide_picks_the_smallest_loss_below_the_threshold():
    assert decide(np.array([0.01, 0.0005]), 0.002) == 1
    assert decide(np.array([0.0004, 0.01]), 0.002) == 0
    assert decide(np.array([0.004, 0.003]), 0.002) is None
    assert decide(np.array([0.004, 0.003]), 0.002, equivalent=True) == 0
    assert decide(np.array([0.02, 0.01, 0.001]), 0.002) == 2
    # both below the threshold: either costs less than it, and the control needs no change
    assert decide(np.array([0.0015, 0.0001]), 0.002) == 0


def test_bayes_factor_matches_the_normal_closed_form():
    # BF = N(m; 0, V + τ²) / N(m; 0, V) for the draws' mean m and variance V
    rng = np.random.default_rng(1)
    diff = rng.normal(0.01, 0.004, 200_000)
    m, v, tau = diff.mean(), diff.var(), 0.02
    closed = stats.norm.logpdf(m, 0, np.sqrt(v + tau**2)) - stats.norm.logpdf(m, 0, np.sqrt(v))
    np.testing.assert_allclose(log_bayes_factor(diff, tau), closed, rtol=1e-10)
    # the treatment of least loss is shipped only with enough evidence
    assert decide(np.array([0.01, 0.0005]), 0.002, log_bf=np.array([2.0]), alpha=0.05) is None
    assert decide(np.array([0.01, 0.0005]), 0.002, log_bf=np.array([3.1]), alpha=0.05) == 1
    # the control kept because the treatment looks worse: as safe as a ship, unless the arms
    # are practically equal (every loss below the threshold)
    assert decide(np.array([0.0005, 0.01]), 0.002, log_bf=np.array([2.0]), alpha=0.05) is None
    assert decide(np.array([0.0005, 0.01]), 0.002, log_bf=np.array([3.1]), alpha=0.05) == 0
    assert decide(np.array([0.0005, 0.001]), 0.002, log_bf=np.array([0.0]), alpha=0.05) == 0
    # two treatments: Bonferroni, log(2 / 0.05) = 3.69
    assert decide(np.array([0.01, 0.0005, 0.02]), 0.002, log_bf=np.array([3.5, 9.0]),
                  alpha=0.05) is None


def test_a_ship_needs_evidence_safe_under_repeated_looks(model):
    fab = _fab(model, [0.30, 0.36, 0.30])       # difference 0.06 ± 0.028: z ≈ 2.1
    ro = compare(fab, "B", "A")
    stucchio = ro.decision(threshold=0.005, alpha=None)
    assert stucchio.action == "ship" and not stucchio.bayes_factor
    safe = ro.decision(threshold=0.005)
    assert safe.action == "wait" and safe.bayes_factor["B"] < 20
    assert "not yet safe under repeated looks" in safe.text
    with pytest.raises(ValueError, match="alpha"):
        ro.decision(threshold=0.005, alpha=1.5)


def test_readout_decision_ships_keeps_or_waits(model):
    fab = _fab(model, [0.30, 0.40, 0.30], sd=0.015)
    ro = compare(fab, "B", "A")
    d = ro.decision(threshold=0.005)
    loss_t = ro.to_frame().set_index("metric").loc["eventual", "loss_treatment"]
    assert d.action == "ship" and d.arm == "B" and d.headline == "ship B"
    np.testing.assert_allclose(d.losses["B"], loss_t)
    assert "ship B" in d.text and "0.5 pp" in d.text and d.bayes_factor["B"] > 20
    assert ro.decision(threshold=1e-7).action == "wait"
    assert "keep waiting" in ro.decision(threshold=1e-7).text
    keep = compare(_fab(model, [0.40, 0.30, 0.30]), "B", "A").decision(threshold=0.005)
    assert keep.action == "keep" and keep.arm == "A"
    with pytest.raises(ValueError, match="needs a threshold"):
        ro.decision()
    for bad in (0, -0.01, True, np.nan, "0.01"):
        with pytest.raises(ValueError, match="threshold must be"):
            ro.decision(threshold=bad)


def test_rope_keeps_the_control_when_the_difference_is_practically_zero(model):
    fab = _fab(model, [0.30, 0.30, 0.30], sd=0.003)
    ro = compare(fab, "B", "A", rope=0.02)
    d = ro.decision(threshold=1e-9)    # the losses alone would keep waiting
    assert d.action == "keep" and d.equivalent and "practical equivalence" in d.text
    assert compare(fab, "B", "A").decision(threshold=1e-9).action == "wait"


def test_several_arms_choose_the_arm_of_least_loss(model):
    fab = _fab(model, [0.30, 0.33, 0.45], sd=0.015)
    ro = compare(fab, ["B", "C"], "A")
    d = ro.decision(threshold=0.005)
    assert d.action == "ship" and d.arm == "C"
    arms = ro.arm_table().query("metric == 'eventual'").set_index("arm")["loss"]
    np.testing.assert_allclose([d.losses[a] for a in "ABC"], arms.loc[list("ABC")])


def test_threshold_in_compare_puts_the_decision_in_the_text(model):
    fab = _fab(model, [0.30, 0.40, 0.30], sd=0.015)
    ro = compare(fab, "B", "A", threshold=0.005)
    assert "Decision (expected-loss rule): ship B" in repr(ro)
    assert "ship B" in ro._repr_html_()
    assert "Decision" not in repr(compare(fab, "B", "A"))
    with pytest.raises(ValueError, match="threshold must be"):
        compare(fab, "B", "A", threshold=-1)


def test_practically_equal_arms_keep_the_control(model):
    fab = _fab(model, [0.30, 0.301, 0.30], sd=0.002)
    d = compare(fab, "B", "A").decision(threshold=0.005)
    assert d.losses["B"] < d.losses["A"] < 0.005
    assert d.action == "keep" and d.arm == "A"
    assert "differ by less than the threshold" in d.text
