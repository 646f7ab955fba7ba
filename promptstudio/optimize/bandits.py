"""Best-arm identification: which few of many candidate prompts score best, found with as
few evaluations as possible.

Each arm is a candidate; pulling an arm evaluates it on a few more examples. A method
supplies `pull(arm, n)`, which returns the scores of the arm's next n examples (always the
same examples for the same arm and position, so a replayed run pulls the same way), or
fewer, or none, once the arm has run out of examples; such an arm is not pulled again.
Budgets count examples, not calls. The strategies come from the bandit literature as
ProTeGi (Pryzant et al. 2023) and APE use it:

- UCB (Auer et al. 2002): pull the arm with the highest
  mean + c * sqrt(log(total pulls) / pulls of the arm). ProTeGi's code puts the round
  number in the log instead of the total pull count, which leaves its first rounds with no
  exploration at all; we use the total, as UCB1 does.
- UCB-E (Audibert, Bubeck & Munos 2010): mean + c * sqrt(c / pulls of the arm), as
  ProTeGi writes it: exploration that does not grow with time.
- Successive rejects (Audibert, Bubeck & Munos 2010): phases of growing length
  n_j = ceil((budget - K) / (log_bar * (K + 1 - j))); in each, every surviving arm is
  brought up to n_j pulls and the worst is dropped. For the best k rather than the best
  one we stop when k arms are left, and log_bar = k/(k+1) + sum(1/i, i = k+1..K) so that
  the phases still add up to the budget (for k = 1 it is the paper's 1/2 + sum(1/i)).
- Successive halving (Karnin, Koren & Somekh 2013): ceil(log2(K / k)) rounds; in each,
  every surviving arm gets floor(budget / (survivors * rounds)) more pulls and the better
  half (never fewer than k) goes on. Means use all of an arm's pulls so far, not only the
  round's, since an arm's examples continue where they left off.

UCB pulls `batch` examples at a time, and successive rejects rounds its phase lengths up to
whole batches, so that the task model sees batches rather than single prompts. Either way
the total stays within `budget` plus one batch per arm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Pull = Callable[[int, int], list[float]]
Example = TypeVar("Example")
STRATEGIES = ("ucb", "ucb-e", "successive-rejects", "successive-halving")
RACE_TEXT = ("'ucb' and 'ucb-e' spend more examples on the contenders that look promising; "
         "'successive-rejects' drops the worst one phase by phase; 'successive-halving' keeps "
         "the better half each round.")
"""The race strategies in plain words, for the settings that choose one."""


def check(strategy: str) -> None:
    """Refuse an unknown strategy, in the user's words, before any work is done."""
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown bandit {strategy!r}; choose one of {', '.join(STRATEGIES)}.")


class OrderedPulls(Generic[Example]):
    """The `pull` of arms that each walk their own fixed order of examples: pulling an arm
    for n scores it on its next n examples with `score(arm, batch)`. The batch's mean
    stands for each of its examples (a bandit needs only sums and counts), and `rewards`
    keeps them per arm, for the leaders of a race the budget cut short."""

    def __init__(self, orders: Sequence[Sequence[Example]],
                 score: Callable[[int, Sequence[Example]], float]) -> None:
        self.orders = orders
        self.score = score
        self.rewards: list[list[float]] = [[] for _ in orders]

    def __call__(self, arm: int, n: int) -> list[float]:
        done = len(self.rewards[arm])
        batch = self.orders[arm][done:done + n]
        fresh = [self.score(arm, batch)] * len(batch) if batch else []
        self.rewards[arm] += fresh
        return fresh


@dataclass
class Arms:
    """Running score totals per arm, and which arms have run out of examples."""

    count: int
    sums: list[float] = field(default_factory=list)
    pulls: list[int] = field(default_factory=list)
    exhausted: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.sums = [0.0] * self.count
        self.pulls = [0] * self.count

    def pull(self, pull: Pull, arm: int, n: int) -> int:
        """Pull `arm` up to n times; returns how many samples it got (fewer once it runs
        out, and from then on it is exhausted)."""
        if n <= 0 or arm in self.exhausted:
            return 0
        rewards = pull(arm, n)
        self.sums[arm] += sum(rewards)
        self.pulls[arm] += len(rewards)
        if len(rewards) < n:
            self.exhausted.add(arm)
        return len(rewards)

    def mean(self, arm: int) -> float:
        return self.sums[arm] / self.pulls[arm] if self.pulls[arm] else 0.0

    @property
    def total(self) -> int:
        return sum(self.pulls)

    def best(self, arms: list[int], k: int) -> list[int]:
        """The k arms with the highest mean; ties go to the lower index (the older one)."""
        return sorted(arms, key=lambda a: (-self.mean(a), a))[:k]


def select(strategy: str, n_arms: int, pull: Pull, *, budget: int, k: int,
           batch: int = 4, c: float = 1.0) -> list[int]:
    """The `k` best of `n_arms` arms after about `budget` pulls, best first."""
    check(strategy)
    arms = Arms(n_arms)
    if n_arms <= k:
        # Every arm is kept, but still ranked, with an equal share of the budget each: a
        # run checks the first of its finalists against the start (`selection`).
        for arm in range(n_arms):
            arms.pull(pull, arm, budget // n_arms)
        return arms.best(list(range(n_arms)), n_arms)
    batch = max(1, batch)
    if strategy == "ucb":
        _upper_confidence(arms, pull, budget, batch,
                          lambda a: c * math.sqrt(math.log(max(arms.total, 2)) / arms.pulls[a]))
    elif strategy == "ucb-e":
        _upper_confidence(arms, pull, budget, batch,
                          lambda a: c * math.sqrt(c / arms.pulls[a]))
    elif strategy == "successive-rejects":
        return _successive_rejects(arms, pull, budget, k, batch)
    else:
        return _successive_halving(arms, pull, budget, k)
    return arms.best(list(range(n_arms)), k)


def _upper_confidence(arms: Arms, pull: Pull, budget: int, batch: int,
                      bonus: Callable[[int], float]) -> None:
    for arm in range(arms.count):  # every arm once, so that each has a mean
        arms.pull(pull, arm, batch)
    while arms.total < budget:
        live = [a for a in range(arms.count) if a not in arms.exhausted]
        if not live:
            return
        arm = max(live, key=lambda a: (arms.mean(a) + bonus(a), -a))
        arms.pull(pull, arm, batch)


def _successive_rejects(arms: Arms, pull: Pull, budget: int, k: int, batch: int
                        ) -> list[int]:
    n = arms.count
    log_bar = k / (k + 1) + sum(1.0 / i for i in range(k + 1, n + 1))
    live = list(range(n))
    for phase in range(1, n - k + 1):
        length = math.ceil(max(0, budget - n) / (log_bar * (n + 1 - phase)))
        target = batch * max(1, math.ceil(length / batch))
        for arm in live:
            arms.pull(pull, arm, target - arms.pulls[arm])
        live.remove(min(live, key=lambda a: (arms.mean(a), -a)))
    return arms.best(live, k)


def _successive_halving(arms: Arms, pull: Pull, budget: int, k: int) -> list[int]:
    live = list(range(arms.count))
    rounds = math.ceil(math.log2(arms.count / k))
    for _ in range(rounds):
        share = max(1, budget // (len(live) * rounds))
        for arm in live:
            arms.pull(pull, arm, share)
        live = arms.best(live, max(k, math.ceil(len(live) / 2)))
    return arms.best(live, k)
