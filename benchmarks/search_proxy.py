"""Is a short trial a good proxy? Rank architectures after a few epochs and after full training.

    python benchmarks/search_proxy.py --archs 8 --short 6 --long 30        # a new benchmark
    python benchmarks/search_proxy.py --resume outputs/<run>-search-proxy  # finish it

Chapter 6's search ranks every trial by its validation macro-F1 after a few epochs (the
proxy) and then trains the winner for much longer. That only works if the proxy orders
architectures the way full training does. This command runs ``trashkit.search.proxy`` (the
measurement chapter 6's ``preset="full"`` runs too): ``--archs`` random architectures of the
default search space under the MACs budget (TrashNet sizes 96/112/128 px), each trained as a
trial would be for ``--short`` and for ``--long`` epochs on the honest protocol's split seed 0
(benchmarks/protocol.py), and Spearman's and Kendall's rank correlations between the two.

Every run lives in ``<folder>/arch<k>/e<epochs>`` and resumes from its ``last.pt``; all short
runs go first, so an interrupted benchmark already answers with the pairs it has.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
from protocol import TRASHNET

from trashkit.runs import new_run_dir, write_atomic, write_json
from trashkit.search import data_classes
from trashkit.search.proxy import draw_architectures, proxy_correlations, proxy_table


def main() -> None:
    """Draw (or reload) the architectures, train every short run, then every long one."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(TRASHNET))
    ap.add_argument("--archs", type=int, default=8)
    ap.add_argument("--short", type=int, default=6, help="epochs of a search trial")
    ap.add_argument("--long", type=int, default=30, help="epochs of full training")
    ap.add_argument("--budget", type=float, default=10e6, help="max official MACs")
    ap.add_argument("--seed", type=int, default=0, help="the random sampler's seed")
    ap.add_argument("--resume", default=None, metavar="RUN_DIR")
    args = ap.parse_args()
    if args.resume:
        root = Path(args.resume)
        spec = json.loads((root / "benchmark.json").read_text())
    else:
        root = new_run_dir("search-proxy")
        spec = {
            "data": str(Path(args.data).resolve()),
            "short": args.short,
            "long": args.long,
            "budget": args.budget,
            "seed": args.seed,
            "archs": draw_architectures(
                args.archs, args.budget, data_classes(args.data), args.seed
            ),
        }
        write_json(root / "benchmark.json", spec)
    print(
        f"{len(spec['archs'])} architectures, {spec['short']} vs {spec['long']} epochs, "
        f"split seed 0; folder {root}",
        flush=True,
    )
    t0 = time.perf_counter()
    table = proxy_table(spec["archs"], spec["short"], spec["long"], spec["data"], root)
    write_atomic(root / "proxy.csv", table.to_csv())
    corr = proxy_correlations(table, spec["short"], spec["long"])
    write_atomic(root / "correlation.csv", corr.to_csv(index=False))
    pd.set_option("display.width", 200)
    print(table.round(4).to_markdown())
    print(corr.round(3).to_markdown(index=False))
    print(f"total {time.perf_counter() - t0:.0f} s in this process")


if __name__ == "__main__":
    main()
