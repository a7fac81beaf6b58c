"""Is a short trial a good proxy? Rank architectures after a few epochs and after full training.

    python benchmarks/search_proxy.py --archs 8 --short 6 --long 30        # a new benchmark
    python benchmarks/search_proxy.py --resume outputs/<run>-search-proxy  # finish it

Chapter 6's search ranks every trial by its validation macro-F1 after a few epochs (the
proxy) and then trains the winner for much longer. That only works if the proxy orders
architectures the way full training does. This benchmark draws ``--archs`` random
architectures from the default search space under the MACs budget (TrashNet sizes 96/112/128
px, as ``search_trashnet.py``), trains each one exactly as a trial would (the chapter-4
recipe with the trial's own image size, batch size, learning rate and RandAugment
magnitude, seed 0) for ``--short`` and for ``--long`` epochs on the honest protocol's split
seed 0 (benchmarks/protocol.py), and prints Spearman's rank correlation between the two.

Every run lives in ``<folder>/arch<k>/e<epochs>`` and resumes from its ``last.pt``; all short
runs go first, so an interrupted benchmark already answers with the pairs it has.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import optuna
import pandas as pd
from protocol import TEST_FRACTION, TRASHNET, VAL_FRACTION, run_one
from scipy.stats import kendalltau, spearmanr

from trashkit.complexity import official_macs
from trashkit.models import build_yaml_model, dump_config
from trashkit.runs import new_run_dir, write_atomic, write_json
from trashkit.search import SearchConfig, data_classes, sample_config

SPLIT = {"split_seed": 0, "test_fraction": TEST_FRACTION, "val_fraction": VAL_FRACTION}


def draw_architectures(n: int, budget: float, seed: int, n_classes: int) -> list[dict]:
    """``n`` random architectures of the default space that build and fit ``budget`` MACs.

    Random sampling (not TPE) on purpose: the question is about the space, not about where
    one sampler happens to look.
    """
    cfg = SearchConfig(image_sizes=(96, 112, 128), budget=budget)
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    archs: list[dict] = []
    while len(archs) < n:
        trial = study.ask()
        try:
            model_cfg, params = sample_config(trial, cfg, n_classes)
            macs = official_macs(build_yaml_model(model_cfg, n_classes), params["image_size"])
        except (optuna.TrialPruned, ValueError, RuntimeError):
            continue
        if macs <= budget:
            archs.append(
                {
                    "yaml": dump_config(model_cfg),
                    "params": params,
                    "macs": int(macs),
                    "sample": trial.number,
                }
            )
    return archs


def train_arch(root: Path, k: int, arch: dict, epochs: int, data: str) -> dict:
    """Train (or resume, or read) architecture ``k`` for ``epochs`` epochs, as a trial would."""
    folder = root / f"arch{k}"
    folder.mkdir(parents=True, exist_ok=True)
    yaml = folder / "model.yaml"
    if not yaml.is_file():
        write_atomic(yaml, arch["yaml"])
    cfg = {"data": data, "model": str(yaml), "epochs": epochs, "seed": 0, **SPLIT, **arch["params"]}
    t0 = time.perf_counter()
    r = run_one(cfg, folder / f"e{epochs}")
    print(
        f"  arch{k} {epochs:>3} epochs: val {r['val_f1']:.4f}, test {r['test_f1']:.4f}, "
        f"{r['macs']:,} MACs, training {r['train_seconds']:.0f} s "
        f"({time.perf_counter() - t0:.0f} s in this process)",
        flush=True,
    )
    return r


def correlations(table: pd.DataFrame, short: int, long: int) -> pd.DataFrame:
    """Spearman's rho and Kendall's tau between the short runs' validation F1 (what the
    search ranks by) and each full-length measure, over the architectures that have both."""
    rows = []
    proxy = f"val F1 ({short} ep)"
    for target in (f"val F1 ({long} ep)", f"test F1 ({long} ep)"):
        both = table[[proxy, target]].dropna()
        if len(both) < 3:
            continue
        rho = spearmanr(both[proxy], both[target])
        tau = kendalltau(both[proxy], both[target])
        rows.append(
            {
                "proxy": proxy,
                "target": target,
                "architectures": len(both),
                "Spearman rho": rho.statistic,
                "p (rho)": rho.pvalue,
                "Kendall tau": tau.statistic,
                "same winner": both[proxy].idxmax() == both[target].idxmax(),
            }
        )
    return pd.DataFrame(rows)


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
    ap.add_argument(
        "--report",
        action="store_true",
        help="with --resume: print what has finished, train nothing",
    )
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
                args.archs, args.budget, args.seed, data_classes(args.data)
            ),
        }
        write_json(root / "benchmark.json", spec)
    print(
        f"{len(spec['archs'])} architectures, {spec['short']} vs {spec['long']} epochs, "
        f"split seed 0; folder {root}",
        flush=True,
    )
    t0 = time.perf_counter()
    results: dict[tuple[int, int], dict] = {}
    for epochs in (spec["short"], spec["long"]):  # every short run first
        for k, arch in enumerate(spec["archs"]):
            done = root / f"arch{k}" / f"e{epochs}" / "test_scores.json"
            if args.report:
                if done.is_file():
                    results[k, epochs] = json.loads(done.read_text())
                continue
            results[k, epochs] = train_arch(root, k, arch, epochs, spec["data"])
    table = summary(spec, results)
    write_atomic(root / "proxy.csv", table.to_csv())
    corr = correlations(table, spec["short"], spec["long"])
    write_atomic(root / "correlation.csv", corr.to_csv(index=False))
    pd.set_option("display.width", 200)
    print(table.round(4).to_markdown())
    print(corr.round(3).to_markdown(index=False))
    print(f"total {time.perf_counter() - t0:.0f} s in this process")


def summary(spec: dict, results: dict) -> pd.DataFrame:
    """One row per architecture: its cost, and its F1 after the short and the long run."""
    s, lg = spec["short"], spec["long"]
    rows = []
    for k, arch in enumerate(spec["archs"]):
        short, long = results.get((k, s), {}), results.get((k, lg), {})
        rows.append(
            {
                "arch": f"arch{k}",
                "image_size": arch["params"]["image_size"],
                "MACs": arch["macs"],
                "params": short.get("params"),
                f"val F1 ({s} ep)": short.get("val_f1"),
                f"test F1 ({s} ep)": short.get("test_f1"),
                f"val F1 ({lg} ep)": long.get("val_f1"),
                f"test F1 ({lg} ep)": long.get("test_f1"),
                f"train s ({lg} ep)": long.get("train_seconds"),
            }
        )
    return pd.DataFrame(rows).set_index("arch")


if __name__ == "__main__":
    main()
