"""The accuracy benchmark's confusion matrices as one PNG (``--png PATH``).

One panel per deployment strategy: true cause (rows) against decided cause (columns), each cell
its count of lost sessions. Right verdicts (the diagonal) are shaded green, wrong ones red, so a
wrong cause stands out at a glance among thousands of right ones.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.accuracy import Results


def headline(res: Results) -> str:
    return (
        f"{res.timelines} timelines, {res.sessions():,} lost sessions: "
        f"{res.wrong_causes()} wrong causes; report counts wrong: {res.report_errors} "
        f"of {res.reports_checked} deployments, outcomes wrong: {res.outcome_errors}\n"
        f"(of them within the clocks' error of a drain, which no stamp can order: "
        f"{res.wrong_indistinguishable} causes, {res.report_errors_indistinguishable} reports)"
    )


def draw_matrices(res: Results, path: Path) -> None:
    """Write the per-strategy confusion matrices of ``res`` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.accuracy import CAUSES, COLUMNS

    strategies = sorted(res.matrices)
    cols = min(3, max(1, len(strategies)))
    rows = max(1, math.ceil(len(strategies) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.4 * rows), squeeze=False)
    for ax in axes.flat[len(strategies) :]:
        ax.axis("off")
    for ax, strategy in zip(axes.flat, strategies, strict=False):
        m = res.matrices[strategy]
        true = [c for c in CAUSES if any(m[(c, d)] for d in COLUMNS)]
        decided = [c for c in COLUMNS if c in true or any(m[(t, c)] for t in CAUSES)]
        peak = max((m[(t, d)] for t in true for d in decided), default=1) or 1
        for i, t in enumerate(true):
            for j, d in enumerate(decided):
                n = m[(t, d)]
                if n:
                    alpha = 0.25 + 0.75 * math.log1p(n) / math.log1p(peak)
                    colour = "#2e7d32" if t == d else "#c62828"
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color=colour, alpha=alpha))
                ax.text(j, i, str(n) if n else "·", ha="center", va="center", fontsize=9)
        ax.set_xlim(-0.5, len(decided) - 0.5)
        ax.set_ylim(len(true) - 0.5, -0.5)
        ax.set_xticks(range(len(decided)), decided, rotation=40, ha="right", fontsize=8)
        ax.set_yticks(range(len(true)), true, fontsize=8)
        ax.set_xlabel("decided cause", fontsize=8)
        ax.set_ylabel("true cause", fontsize=8)
        wrong = sum(n for (t, d), n in m.items() if t != d)
        ax.set_title(f"{strategy}: {sum(m.values()):,} sessions, {wrong} wrong", fontsize=10)
    fig.suptitle(headline(res), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
