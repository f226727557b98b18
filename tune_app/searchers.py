"""A Ray Tune searcher over a precomputed list of configs (grid search over a conditional space).

Part of the runner layer: imported only when a grid search is built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher


class PointsSearcher(Searcher):
    """Hands out a precomputed list of flat configs, then reports FINISHED.

    Ray's own grid search cannot express conditional parameters; the space
    expands the conditional tree itself (see ``SearchSpace.grid``).
    """

    def __init__(self, points: list[dict[str, Any]], metric: str, mode: str) -> None:
        super().__init__(metric=metric, mode=mode)
        self.points = points
        self.next_index = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        if self.next_index >= len(self.points):
            return Searcher.FINISHED
        self.next_index += 1
        return dict(self.points[self.next_index - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps({"points": self.points, "next_index": self.next_index}))

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.points, self.next_index = state["points"], state["next_index"]
