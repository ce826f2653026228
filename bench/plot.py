"""Draw bench.json (written by `python -m bench`) as PNGs: throughput against size with the
raw database limit beside it, time against size with a linear reference, peak memory.

    python -m bench.plot bench/results/bench.json [--out DIR]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _axes_style(ax, title: str, xlabel: str, ylabel: str, logy: bool = True) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    # below the axes, so that no legend hides a point
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
              frameon=False)


def _linear_reference(ax, xs: list[int], ys: list[float]) -> None:
    """A dashed line through the largest point, slope 1 on log-log: perfectly linear time."""
    if not xs:
        return
    x0, y0 = xs[-1], ys[-1]
    ax.plot(xs, [y0 * x / x0 for x in xs], "k--", linewidth=0.8, alpha=0.6,
            label="linear in size")


def _label_points(ax, xs, ys, fmt="{:,.0f}") -> None:
    for x, y in zip(xs, ys):
        ax.annotate(fmt.format(y), (x, y), textcoords="offset points", xytext=(0, 5),
                    ha="center", fontsize=7)


def draw(data: dict, out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    machine = data.get("machine", {})
    subtitle = (f"{machine.get('cpus', '?')} CPUs, PostgreSQL {machine.get('postgresql', '?')}, "
                f"measured {data.get('measured_at', '?')[:16]}")

    ingest = data.get("ingest") or []
    if ingest:
        xs = [r["lines"] for r in ingest]
        fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 5.4))
        ours = [r["lines_per_s"] for r in ingest]
        raw = [r["copy_rows_per_s"] for r in ingest]
        keyed = [r["keyed_copy_rows_per_s"] for r in ingest]
        a.plot(xs, raw, "s--", color="tab:gray", label="raw limit: psql \\copy (rows/s)")
        a.plot(xs, keyed, "^--", color="tab:orange",
               label="keyed copy: \\copy with the commissions' keys (rows/s)")
        _label_points(a, xs, keyed)
        a.plot(xs, ours, "o-", color="tab:blue", label="ours: HTTP upload to committed (lines/s)")
        _label_points(a, xs, ours)
        _label_points(a, xs, raw)
        _axes_style(a, "Ingestion throughput", "lines in one report", "lines per second")
        secs = [r["seconds"] for r in ingest]
        b.plot(xs, secs, "o-", color="tab:blue", label="ours (s)")
        b.plot(xs, [r["copy_seconds"] for r in ingest], "s--", color="tab:gray",
               label="psql \\copy (s)")
        _linear_reference(b, xs, secs)
        _label_points(b, xs, secs, "{:.2f}")
        _axes_style(b, "Ingestion time", "lines in one report", "seconds")
        mem = [r["peak_rss_mb"] for r in ingest]
        c.plot(xs, mem, "o-", color="tab:purple", label="web worker peak RSS (MB)")
        _label_points(c, xs, mem, "{:.0f}")
        c.set_ylim(0, max(mem) * 1.4)
        _axes_style(c, "Ingestion memory", "lines in one report", "MB", logy=False)
        fig.suptitle(f"Ingestion: one generic CSV upload through gunicorn until committed "
                     f"({subtitle})", fontsize=10)
        fig.tight_layout()
        path = out / "ingest.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    settle = data.get("settle") or []
    if settle:
        xs = [r["members"] for r in settle]
        fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 5.4))
        e2e = [r["members_per_s"] for r in settle]
        plan = [r["plan_members_per_s"] for r in settle]
        a.plot(xs, [r["group_by_members_per_s"] for r in settle], "s--", color="tab:gray",
               label="raw: GROUP BY of balances")
        a.plot(xs, [r["raw_write_members_per_s"] for r in settle], "^--", color="tab:olive",
               label="raw: ledger legs INSERT ... SELECT")
        a.plot(xs, plan, "o-", color="tab:green", label="ours: plan")
        a.plot(xs, e2e, "o-", color="tab:blue", label="ours: plan + approve + execute")
        _label_points(a, xs, e2e)
        _label_points(a, xs, plan)
        _axes_style(a, "Settlement throughput", "payable members", "members per second")
        total = [r["total_s"] for r in settle]
        b.plot(xs, total, "o-", color="tab:blue", label="end to end (s)")
        b.plot(xs, [r["execute_s"] for r in settle], "v-", color="tab:cyan", label="execute (s)")
        b.plot(xs, [r["plan_s"] for r in settle], "o-", color="tab:green", label="plan (s)")
        _linear_reference(b, xs, total)
        _label_points(b, xs, total, "{:.1f}")
        _axes_style(b, "Settlement time", "payable members", "seconds")
        mem = [r["peak_rss_mb"] for r in settle]
        c.plot(xs, mem, "o-", color="tab:purple", label="largest rq process peak RSS (MB)")
        _label_points(c, xs, mem, "{:.0f}")
        c.set_ylim(0, max(mem) * 1.4)
        _axes_style(c, "Settlement memory", "payable members", "MB", logy=False)
        workers = settle[0].get("workers", 2)
        fig.suptitle(f"Settlement run: {workers} rq workers, PayPal sandbox, points partners' "
                     f"files ({subtitle})", fontsize=10)
        fig.tight_layout()
        path = out / "settle.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="default: beside the JSON")
    args = parser.parse_args()
    data = json.loads(args.results.read_text())
    for path in draw(data, args.out or args.results.parent):
        print(f"written {path}")


if __name__ == "__main__":
    main()
