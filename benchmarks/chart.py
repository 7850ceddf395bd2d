"""Draws requests/s and p99 per target and scenario as a PNG (matplotlib, when installed)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.summary import Summary

Results = dict[str, dict[str, dict[str, Summary]]]
COLORS = {
    "direct": "#999999",
    "meshcore": "#d62728",
    "envoy": "#1f77b4",
    "nginx": "#2ca02c",
    "haproxy": "#ff7f0e",
}


def draw(results: Results, path: Path) -> bool:
    """Writes the chart to `path`; False (and no file) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = [n for n, per in results.items() if any("rps" in m for m in per.values())]
    if not names:
        return False
    fig, axes = plt.subplots(2, len(names), figsize=(3.2 * len(names), 6.5), squeeze=False)
    for col, scenario in enumerate(names):
        per_target = results[scenario]
        for row, (metric, label) in enumerate((("rps", "requests/s"), ("p99_ms", "p99 ms"))):
            ax = axes[row][col]
            shown = [(t, m[metric]) for t, m in per_target.items() if metric in m]
            xs = range(len(shown))
            medians = [s["median"] for _, s in shown]
            err = [
                [s["median"] - s["min"] for _, s in shown],
                [s["max"] - s["median"] for _, s in shown],
            ]
            colors = [COLORS.get(t, "#555555") for t, _ in shown]
            ax.bar(xs, medians, yerr=err, color=colors, capsize=3)
            ax.set_xticks(list(xs), [t for t, _ in shown], rotation=45, ha="right", fontsize=8)
            ax.tick_params(axis="y", labelsize=8)
            if row == 0:
                ax.set_title(scenario, fontsize=10)
            if col == 0:
                ax.set_ylabel(label)
    fig.suptitle("meshcore e2e: medians, bars show min–max over rounds (p99: lower is better)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
