"""Members paid over time under load, as a PNG: `OUT/members_paid.png`.

Top: members paid (the run's progress as `GET /v1/settlement-runs/{id}` reported it to the
payout operator) against seconds since approval, beside the 10,000 members/s target, and
the lines ingested meanwhile (committed reports) on the right axis. Bottom: the rq queues'
waiting jobs and the database's active backends (and those waiting on a lock), from the
`DbSampler`.

    python -m loadtests.plot var/loadtest      # again, from the files of a finished test
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

TARGET_MEMBERS_PER_S = 10_000


def draw(out: Path, timeline: dict, series: list[dict], title: str) -> Path | None:
    approved = timeline.get("approved_at")
    if approved is None:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    paid = timeline.get("members_paid") or []
    xs = [0.0] + [t - approved for t, _ in paid]
    ys = [0] + [n for _, n in paid]
    top.step(xs, ys, where="post", color="tab:blue", linewidth=2, label="members paid")
    items = timeline.get("items") or (ys[-1] if ys else 0)
    if items:
        end = items / TARGET_MEMBERS_PER_S
        top.plot([0, end], [0, items], "k--", linewidth=0.9,
                 label=f"{TARGET_MEMBERS_PER_S:,} members/s (target)")
    top.set_ylabel("members paid (cumulative)")
    top.grid(True, alpha=0.3)
    lines = timeline.get("lines") or []
    if lines:
        right = top.twinx()
        total, lx, ly = 0, [], []
        for t, n in sorted(lines):
            total += n
            lx.append(t - approved)
            ly.append(total)
        right.plot(lx, ly, color="tab:orange", linewidth=1.2, label="lines ingested")
        right.set_ylabel("report lines ingested (cumulative)", color="tab:orange")
        right.legend(loc="lower right", fontsize=8)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title, fontsize=10)
    _queues_and_backends(bottom, series, approved)
    bottom.set_xlabel("seconds since approval")
    fig.tight_layout()
    path = out / "members_paid.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _queues_and_backends(ax, series: list[dict], approved: float) -> None:
    if not series:
        return
    xs = [s["t"] - approved for s in series]
    names = sorted({name for s in series for name in s["queues"]})
    for name in names:
        label = name.rsplit("-", 1)[-1]
        ax.plot(xs, [s["queues"].get(name, {}).get("queued", 0) for s in series],
                linewidth=1, label=f"rq {label}: jobs waiting")
    ax.plot(xs, [s["active"] for s in series], color="black", linewidth=0.8, alpha=0.6,
            label="database: active backends")
    ax.plot(xs, [s["lock_waits"] for s in series], color="tab:red", linewidth=0.8,
            label="database: waiting on a lock")
    ax.axvline(0, color="gray", linewidth=0.6)
    ax.set_ylabel("count")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5, ncol=3, loc="upper right")


def draw_from(out: Path, summary: dict) -> str | None:
    """The plot of a test that just ended (its timeline.json and db_series.json)."""
    try:
        timeline = json.loads((out / "timeline.json").read_text())
        series_path = out / "db_series.json"
        series = json.loads(series_path.read_text()) if series_path.exists() else []
        run = summary.get("run") or {}
        title = (f"{summary.get('members', 0):,} members, {run.get('items', 0):,} paid in "
                 f"{run.get('execute_s', '-')} s after approval "
                 f"({run.get('members_per_s', '-')} /s) while "
                 f"{summary.get('uploaders', '?')} networks uploaded; "
                 f"{summary.get('code', {}).get('commit', '')[:7]}")
        path = draw(out, timeline, series, title)
    except (OSError, ValueError, KeyError) as exc:
        return f"not drawn: {exc!r}"[:200]
    return str(path) if path else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.plot")
    parser.add_argument("out", type=Path, help="a load test's output folder")
    args = parser.parse_args(argv)
    timeline = json.loads((args.out / "timeline.json").read_text())
    series_path = args.out / "db_series.json"
    series = json.loads(series_path.read_text()) if series_path.exists() else []
    path = draw(args.out, timeline, series, args.out.name)
    print(path or "the run was never approved: nothing to draw")
    return 0 if path else 1


if __name__ == "__main__":
    raise SystemExit(main())
