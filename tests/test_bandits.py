"""Best-arm identification on synthetic arms whose rewards are fixed in advance."""

from __future__ import annotations

import math
import random

import pytest

from promptstudio.optimize import bandits

STRATEGIES = bandits.STRATEGIES


class Arms:
    """Arms that pay out pre-drawn rewards in order, and remember what was asked of them."""

    def __init__(self, rewards: list[list[float]]) -> None:
        self.rewards = rewards
        self.pulls = [0] * len(rewards)
        self.requests: list[tuple[int, int]] = []

    @classmethod
    def bernoulli(cls, chances: list[float], seed: int, length: int = 2000) -> Arms:
        draws = [random.Random(seed * 1000 + arm) for arm in range(len(chances))]
        return cls([[float(draw.random() < p) for _ in range(length)]
                    for draw, p in zip(draws, chances)])

    def pull(self, arm: int, n: int) -> list[float]:
        self.requests.append((arm, n))
        got = self.rewards[arm][self.pulls[arm]:self.pulls[arm] + n]
        self.pulls[arm] += len(got)
        return got

    @property
    def total(self) -> int:
        return sum(self.pulls)


CHANCES = [0.1, 0.3, 0.2, 0.9, 0.4, 0.5, 0.75, 0.6]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_finds_the_best_arms_with_high_probability(strategy):
    found_best = found_top_two = 0
    for seed in range(20):
        arms = Arms.bernoulli(CHANCES, seed)
        found_best += bandits.select(strategy, 8, arms.pull, budget=1600, k=1) == [3]
        arms = Arms.bernoulli(CHANCES, seed + 100)
        top_two = bandits.select(strategy, 8, arms.pull, budget=1600, k=2)
        found_top_two += set(top_two) == {3, 6}
        assert top_two[0] == 3 or set(top_two) != {3, 6}, "best first"
    assert found_best >= 18
    assert found_top_two >= 17


def test_ucb_spends_more_pulls_on_better_arms():
    for seed in range(5):
        arms = Arms.bernoulli(CHANCES, seed)
        bandits.select("ucb", 8, arms.pull, budget=1600, k=1)
        by_chance = [arms.pulls[a] for a in sorted(range(8), key=lambda a: CHANCES[a])]
        assert by_chance[-1] == max(by_chance)
        assert by_chance[-1] > 3 * by_chance[0]
        assert sum(by_chance[4:]) > 2 * sum(by_chance[:4])


def _round_index_ucb(rewards: list[list[float]], budget: int, batch: int) -> int:
    """UCB as ProTeGi's code writes it, with the round number in the log term."""
    arms = Arms(rewards)
    sums, counts = [0.0] * len(rewards), [0] * len(rewards)

    def pull(arm: int) -> None:
        got = arms.pull(arm, batch)
        sums[arm] += sum(got)
        counts[arm] += len(got)

    for arm in range(len(rewards)):
        pull(arm)
    round_number = 1
    while arms.total < budget:
        pull(max(range(len(rewards)), key=lambda a: (
            sums[a] / counts[a] + math.sqrt(math.log(round_number) / counts[a]), -a)))
        round_number += 1
    return max(range(len(rewards)), key=lambda a: sums[a] / counts[a])


def test_ucb_explores_with_the_total_pull_count():
    # Arm 1 is much better but starts with an unlucky batch. With log(total pulls) its
    # bonus soon outgrows arm 0's lead; with log(round), which is 0 in the first round,
    # arm 0 is pulled greedily until the budget is gone.
    rewards = [[0.6] * 100, [0.25] * 4 + [1.0] * 96]
    assert _round_index_ucb(rewards, budget=24, batch=4) == 0
    arms = Arms(rewards)
    assert bandits.select("ucb", 2, arms.pull, budget=24, k=1, batch=4) == [1]
    assert arms.pulls[1] > 4


def test_ucb_e_with_little_exploration_follows_the_means():
    # UCB-E's bonus c * sqrt(c / n) does not grow with the total: with a small c it never
    # makes up arm 1's deficit, however long the search runs.
    arms = Arms([[0.5] * 100, [0.4] * 100])
    assert bandits.select("ucb-e", 2, arms.pull, budget=60, k=1, batch=4, c=0.1) == [0]
    assert arms.pulls == [56, 4]


def test_successive_rejects_phase_lengths_follow_audibert_et_al():
    # Arm i always pays i/10, so the arms go in order 0, 1, 2, 3. With K = 5 and a budget
    # of 100: log_bar = 1/2 + 1/2 + 1/3 + 1/4 + 1/5 and n_j = ceil(95 / (log_bar (6 - j))).
    arms = Arms([[i / 10] * 100 for i in range(5)])
    log_bar = 0.5 + sum(1 / i for i in range(2, 6))
    lengths = [math.ceil(95 / (log_bar * (6 - j))) for j in range(1, 5)]
    assert lengths == [11, 14, 18, 27]
    assert bandits.select("successive-rejects", 5, arms.pull, budget=100, k=1,
                          batch=1) == [4]
    assert arms.pulls == [*lengths, lengths[-1]]
    assert arms.total <= 100


def test_successive_rejects_for_the_best_k_spends_the_budget():
    arms = Arms([[i / 10] * 1000 for i in range(8)])
    assert bandits.select("successive-rejects", 8, arms.pull, budget=400, k=3,
                          batch=1) == [7, 6, 5]
    assert 400 - 8 <= arms.total <= 400


def test_successive_halving_rounds_follow_karnin_et_al():
    # 8 arms, 3 rounds: 240 // (8 * 3) = 10 pulls, then 240 // (4 * 3) = 20 more, then
    # 240 // (2 * 3) = 40 more; each round keeps the better half.
    arms = Arms([[i / 10] * 100 for i in range(8)])
    assert bandits.select("successive-halving", 8, arms.pull, budget=240, k=1) == [7]
    assert arms.pulls == [10, 10, 10, 10, 30, 30, 70, 70]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("n_arms", "k", "budget", "batch"), [
    (8, 2, 1600, 4), (12, 4, 100, 8), (5, 1, 3, 4), (30, 4, 250, 32), (9, 3, 0, 2)])
def test_budget_is_respected(strategy, n_arms, k, budget, batch):
    arms = Arms.bernoulli([0.5] * n_arms, seed=n_arms)
    chosen = bandits.select(strategy, n_arms, arms.pull, budget=budget, k=k, batch=batch)
    assert len(chosen) == k and len(set(chosen)) == k
    assert arms.total <= budget + batch * n_arms


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_arms_that_run_out_are_not_pulled_again(strategy):
    # Arm 2 is the best but has only 6 examples; arm 0 has none at all.
    rewards = [[], [0.0, 1.0] * 100, [1.0] * 6, [1.0, 0.0, 0.0] * 100]
    arms = Arms(rewards)
    chosen = bandits.select(strategy, 4, arms.pull, budget=1000, k=2, batch=4)
    assert chosen[0] == 2
    assert 0 not in chosen
    for arm in range(4):
        asked = [n for a, n in arms.requests if a == arm]
        short = next((i for i, n in enumerate(asked)
                      if sum(asked[:i + 1]) > len(rewards[arm])), None)
        if short is not None:
            assert short == len(asked) - 1, f"arm {arm} pulled after it ran out"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_arm_exhausted_ends_the_search(strategy):
    arms = Arms([[0.5] * 3, [0.7] * 3, [0.2] * 3])
    assert bandits.select(strategy, 3, arms.pull, budget=10_000, k=1, batch=4) == [1]
    assert arms.total == 9


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_k_at_least_the_number_of_arms_keeps_all_ranked_on_equal_shares(strategy):
    """Nothing is dropped, but the caller still gets the arms best first (a run checks its
    first finalist), each scored on the same share of the budget."""
    arms = Arms([[0.0, 1.0] * 20, [1.0] * 40, [0.0] * 40])
    assert bandits.select(strategy, 3, arms.pull, budget=30, k=3) == [1, 0, 2]
    assert arms.requests == [(0, 10), (1, 10), (2, 10)]
    again = Arms([[0.0, 1.0] * 20, [1.0] * 40, [0.0] * 40])
    assert bandits.select(strategy, 3, again.pull, budget=30, k=5) == [1, 0, 2]
    tied = Arms([[1.0] * 10] * 3)
    assert bandits.select(strategy, 3, tied.pull, budget=3, k=3) == [0, 1, 2], (
        "ties go to the older arm")


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="ucb"):
        bandits.select("thompson", 3, lambda arm, n: [1.0] * n, budget=10, k=1)
