"""Replay other rules for a run's final choice on the candidates it chose among.

`optimizers.py --pool` stores, for every run, each candidate the run chose among (its
finalists and the start) with per-row scores on train (as the search scored it), all of dev,
and test, and which dev rows were the select third. This script replays the choice under
several rules and prints, per rule, the mean test score of what it would have picked, how
many picks rose above the start and fell below it, beside two references no run can reach:
the best of the pool on test, and the best on all of dev with no check.

Every rule makes one sign test of one challenger against the start on dev rows that
neither the search nor the choice of the challenger used, so each is as safe from luck as
the others; they differ in how the challenger is chosen, on how many rows it is checked,
and whether a challenger that does not beat the start on the select rows is checked at all.
The rule runs follow now (`optimize.runner.choose`, since 2026-12-06) is "by search (now)":
the search's own ranking picks the challenger, checked on every dev row the search never
used (the select third is used only by ProTeGi, which ranks its beam there), then the
credit step for a new instruction with new examples (`credited`: the examples alone get
the credit where they beat the start and the words do not beat the user's with them; a
gain neither part alone made is kept whole since 2026-12-07; on the same day a pick that
keeps the user's instruction came to be checked on all of dev after ProTeGi too).

    python benchmarks/selection_rules.py ROWS.jsonl [ROWS.jsonl ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptstudio.optimize.selection import duel


def mean(scores: dict[str, float], ids: list[str] | None = None) -> float:
    keys = list(scores) if ids is None else [i for i in ids if i in scores]
    return sum(scores[i] for i in keys) / len(keys) if keys else 0.0


def beats(challenger: dict[str, float], holder: dict[str, float], ids: list[str]) -> bool:
    """Whether `challenger` beats `holder` on `ids` as a run's confirm check demands."""
    return duel({i: challenger[i] for i in ids}, {i: holder[i] for i in ids}).won


class Pool:
    """One run's candidates, with the select and confirm parts of its dev rows."""

    def __init__(self, row: dict) -> None:
        self.task = row["task"]
        self.row = row
        self.candidates = [c for c in row["pool"] if not c["ablation"]]
        self.start = next(c for c in self.candidates if c["start"])
        self.others = [c for c in self.candidates if not c["start"]]
        self.select = [str(i) for i in row["pool"][0]["select_ids"]]
        self.confirm = [i for i in self.start["dev"] if i not in self.select]

    def check(self, challenger: dict | None, rows: list[str] | None = None) -> dict:
        """The challenger if it passes the sign test on `rows` (the confirm part), else
        the start."""
        rows = self.confirm if rows is None else rows
        if challenger is None or len(rows) < 3:
            return self.start
        return challenger if beats(challenger["dev"], self.start["dev"], rows) else (
            self.start)

    def by(self, key: Callable[[dict], tuple]) -> dict | None:
        ranked = sorted(self.others, key=lambda c: (*key(c), -c["id"]), reverse=True)
        return ranked[0] if ranked else None

    def unused(self) -> list[str]:
        """The dev rows the run's search never used: the confirm part where the search
        scored the select third (ProTeGi ranking a beam of more than one), else all of dev.
        A run under the rule now says which (`select_rows`); for older rows, whose
        `select_rows` is always the select third, the method tells."""
        if "search" in self.row.get("start_scores", {}):
            searched = self.row["select_rows"] > 0
        else:
            searched = "protegi" in self.row["method"]
        return self.confirm if searched else list(self.start["dev"])

    def sel(self, c: dict) -> float:
        return mean(c["dev"], self.select)

    def train(self, c: dict) -> float:
        return mean(c["train"])


def ties_to_start(pool: Pool) -> dict:
    """The rule until 2026-12-06: best on select, then train; a tie with the start on
    select keeps the start unchecked."""
    best = pool.by(lambda c: (pool.sel(c), pool.train(c)))
    if best is None or pool.sel(best) <= pool.sel(pool.start):
        return pool.start
    return pool.check(best)


def ties_checked(pool: Pool) -> dict:
    """The rule for part of 2026-12-06: best on select, then train; checked unless it is
    below the start on select."""
    best = pool.by(lambda c: (pool.sel(c), pool.train(c)))
    if best is None or pool.sel(best) < pool.sel(pool.start):
        return pool.start
    return pool.check(best)


def always_checked(pool: Pool) -> dict:
    """Best on select, then train, always checked."""
    return pool.check(pool.by(lambda c: (pool.sel(c), pool.train(c))))


def by_train(pool: Pool) -> dict:
    """Best by the search's train score, checked on the confirm rows."""
    return pool.check(pool.by(lambda c: (pool.train(c),)))


def by_search(pool: Pool, own_instruction_on_all_dev: bool = True) -> dict:
    """The best by the search's own score (train), checked on every dev row the search
    never used: all of dev, or the confirm part after ProTeGi, which ranks on the select
    third (there the replay ranks by train too; the run ranks ProTeGi's own finalists by
    their select score). Since 2026-12-07 a challenger with the start's instruction is
    checked on all of dev after ProTeGi too (`own_instruction_on_all_dev`; ProTeGi's beam
    shows the start's examples, so the select third ranked instructions only). No credit
    step: a new instruction with new examples keeps its words whenever it wins."""
    ranked = sorted(pool.others, key=lambda c: (-pool.train(c), pool.others.index(c)))
    challenger = ranked[0] if ranked else None
    rows = pool.unused()
    if own_instruction_on_all_dev and challenger is not None and (
            challenger["instruction"] == pool.start["instruction"]):
        rows = list(pool.start["dev"])
    return pool.check(challenger, rows)


def credited(pool: Pool, unclear_keeps_start: bool, own_instruction_on_all_dev: bool = True
             ) -> dict:
    """`by_search`, then the credit step of `optimize.runner.choose`: a new instruction with
    new examples must also beat the user's instruction with the same examples (the run's
    "ablation" candidate, in the pool where the run made one); if it does not, the user's
    instruction with those examples is the pick where it beats the start, and otherwise
    the start (until 2026-12-07) or the winner whole (now). Exact where the replay's
    challenger is the run's, as under the rule runs follow; rows made before pools held
    the ablation get no credit step."""
    pick = by_search(pool, own_instruction_on_all_dev)
    own_words = next((c for c in pool.row["pool"] if c["operation"] == "ablation"), None)
    if pick is pool.start or own_words is None or (
            pick["instruction"] == pool.start["instruction"]):
        return pick
    rows = pool.unused()
    if beats(pick["dev"], own_words["dev"], rows):
        return pick
    if beats(own_words["dev"], pool.start["dev"], rows):
        return own_words
    return pool.start if unclear_keeps_start else pick


def credit_until_1207(pool: Pool) -> dict:
    """The rule from 2026-12-06 to the morning of 12-07: where neither part alone beat what
    it replaces, the start was kept; after ProTeGi every pick was checked on two thirds of
    dev."""
    return credited(pool, unclear_keeps_start=True, own_instruction_on_all_dev=False)


def two_thirds_after_protegi(pool: Pool) -> dict:
    """The rule on 2026-12-07 until a pick that keeps the user's instruction was checked on
    all of dev after ProTeGi too."""
    return credited(pool, unclear_keeps_start=False, own_instruction_on_all_dev=False)


def by_search_credited(pool: Pool) -> dict:
    """The rule now: `by_search` with the credit step, a gain neither part alone made
    kept whole, a pick with the user's instruction checked on all of dev."""
    return credited(pool, unclear_keeps_start=False)


def pooled(pool: Pool) -> dict:
    """Best by its mean over its train rows and the select rows together, checked."""
    def score(c: dict) -> tuple:
        rows = [*c["train"].values(), *(c["dev"][i] for i in pool.select)]
        return (sum(rows) / len(rows),)
    return pool.check(pool.by(score))


def first_finalist(pool: Pool) -> dict:
    """The method's own first finalist (the pool is stored in the run's finalist order),
    checked like `by_search`."""
    return pool.check(pool.others[0] if pool.others else None, pool.unused())


RULES = {"ties to the start": ties_to_start, "ties checked": ties_checked,
         "always checked": always_checked, "by train": by_train,
         "no credit step": by_search, "credit until 12-07": credit_until_1207,
         "2/3 after ProTeGi": two_thirds_after_protegi, "by search (now)": by_search_credited,
         "first finalist": first_finalist, "pooled": pooled}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="+")
    args = parser.parse_args()
    pools = [Pool(row) for path in args.rows for line in Path(path).read_text().splitlines()
             if line.strip() and "pool" in (row := json.loads(line))]
    if not pools:
        print("No rows with a 'pool' (run optimizers.py with --pool).", file=sys.stderr)
        return 1
    start = sum(mean(p.start["test"]) for p in pools) / len(pools)
    print(f"{len(pools)} runs; start's mean test {start:.3f}")
    print(f"{'rule':<22} {'mean test':>9} {'gain':>6} {'above':>5} {'below':>5}")
    picks_by_rule = {}
    for name, rule in RULES.items():
        picks = [(p, rule(p)) for p in pools]
        picks_by_rule[name] = picks
        tests = [mean(c["test"]) - mean(p.start["test"]) for p, c in picks]
        print(f"{name:<22} {start + sum(tests) / len(tests):>9.3f} "
              f"{100 * sum(tests) / len(tests):>+6.1f} {sum(t > 0 for t in tests):>5} "
              f"{sum(t < 0 for t in tests):>5}")
    for name, pick in (("best of pool on test", lambda p: max(
            p.candidates, key=lambda c: mean(c["test"]))),
            ("best on all dev", lambda p: max(p.candidates, key=lambda c: mean(c["dev"])))):
        tests = [mean(pick(p)["test"]) - mean(p.start["test"]) for p in pools]
        print(f"{name:<22} {start + sum(tests) / len(tests):>9.3f} "
              f"{100 * sum(tests) / len(tests):>+6.1f} (reference, not a rule)")
    print("\nPer task: start's test, then each rule's pick's test")
    print("task".ljust(22) + " start " + " ".join(f"{n[:8]:>8}" for n in RULES))
    for index, pool in enumerate(pools):
        cells = " ".join(f"{mean(picks_by_rule[n][index][1]['test']):>8.2f}" for n in RULES)
        print(f"{pool.task:<22} {mean(pool.start['test']):>5.2f} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
