"""`hyperadam-keras evaluate`: run evaluation suites for a bundle and write their reports.

    hyperadam-keras evaluate --suite paper-table1 --seeds 20 --output-dir runs/eval
    hyperadam-keras evaluate --suite ablation-j --bundle bundles/j10 --bundle bundles/j20
    hyperadam-keras evaluate --suite-file my_suite.json --suite my-suite
    hyperadam-keras evaluate --suite paper-table1 --cache-dir runs/cache   # resumable; reuses baseline runs
    hyperadam-keras evaluate --suite generalization --cache-dir runs/fit-cache   # Keras models via fit
    hyperadam-keras evaluate --suite generalization --baselines-from benchmarks/generalization/generalization.json
    hyperadam-keras evaluate --from-json runs/eval/*/*.json --benchmarks-md BENCHMARKS.md
    hyperadam-keras evaluate --list
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from hyperadam_keras.cli.arg_types import comma_list, optional, positive_float, positive_int
from hyperadam_keras.defaults import DEFAULT_MAX_RELATIVE_STEP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hyperadam_keras.lab.eval.compare import ADAMW
    from hyperadam_keras.lab.eval.suites import BASELINE_NAMES

    parser.add_argument("--suite", action="append", default=None,
                        help="suite to run (repeatable); see --list. Default: quick")
    parser.add_argument("--suite-file", action="append", default=[],
                        help="JSON file defining a suite (repeatable); registers it for --suite")
    parser.add_argument("--bundle", action="append", default=None,
                        help="HyperAdam bundle directory (repeatable, for ablation-j). Default: the shipped one")
    parser.add_argument("--seeds", type=positive_int, default=None,
                        help="evaluation seeds 0..N-1 (default: the suite's, 20 for the paper suites)")
    parser.add_argument("--tune-seeds", type=positive_int, default=None,
                        help="tuning seeds for the baselines' learning rates, disjoint from the evaluation "
                             "seeds (default: the suite's)")
    parser.add_argument("--baselines", type=comma_list(BASELINE_NAMES + (ADAMW,)), default=None,
                        help="comma-separated baselines to run instead of the suite's "
                             f"({','.join(BASELINE_NAMES)}; {ADAMW} in fit suites such as generalization)")
    parser.add_argument("--task", action="append", default=None, metavar="NAME",
                        help="fit suites (generalization): run only this task (repeatable)")
    parser.add_argument("--baselines-from", metavar="JSON", default=None,
                        help="reuse the baselines' entries of an earlier result JSON of the suite (e.g. "
                             "benchmarks/generalization/generalization.json) instead of tuning and training them; "
                             "each is checked by training one of its runs again, bit for bit. With several "
                             "--suite, a JSON per suite: give its directory, holding SUITE/SUITE.json")
    parser.add_argument("--no-hyperadam", action="store_true",
                        help="fit suites: run only the baselines (with --cache-dir: fills the cache ahead of "
                             "HyperAdam's runs)")
    # Not given: absent from the namespace (None is a value: no cap).
    parser.add_argument("--max-relative-step", type=optional(positive_float), default=argparse.SUPPRESS,
                        help="HyperAdam's relative-step cap, or 'none' (no cap, as meta-training runs the bundles); "
                             f"not for the bench suite (default: the optimizer's, {DEFAULT_MAX_RELATIVE_STEP})")
    parser.add_argument("--candidate-clip", type=optional(positive_float), default=argparse.SUPPRESS,
                        help="HyperAdam's clip of each candidate update m^_j to +-this value, or 'none'; not for "
                             "the bench suite (default: the optimizer's, none)")
    parser.add_argument("--warmup-steps", type=optional(positive_int), default=argparse.SUPPRESS,
                        help="HyperAdam's linear warm-up over this many updates, or 'none'; not for the bench "
                             "suite (default: the optimizer's, none)")
    parser.add_argument("--long", action="store_true", help="the long horizons (paper-cnn: 10,000 steps)")
    parser.add_argument("--output-dir", default="runs/evaluate",
                        help="reports go to OUTPUT_DIR/SUITE/ (Markdown, PNG, JSON)")
    parser.add_argument("--no-xla", action="store_true", help="do not compile the training loop with XLA")
    parser.add_argument("--chunk-size", type=positive_int, default=100, help="training steps per compiled call")
    parser.add_argument("--no-curves", action="store_true", help="leave the per-step curves out of the JSON")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="store every finished training run in DIR (one JSON file per run, keyed by a "
                             "sha256 of the task's kind, arguments and steps, the optimizer's class, "
                             "hyper-parameters and HyperAdam meta-parameters' fingerprint, the learning "
                             "rate, the seed, XLA, chunk size and library versions) and reuse the runs found "
                             "there: a killed suite resumes where it stopped, and a new bundle reuses every "
                             "baseline run. Not used by the bench suite")
    parser.add_argument("--from-json", nargs="+", default=None, metavar="JSON",
                        help="re-render reports from saved result JSONs instead of running")
    parser.add_argument("--benchmarks-md", default=None, metavar="PATH",
                        help="also write one Markdown file with every suite's section (e.g. BENCHMARKS.md)")
    parser.add_argument("--preamble", default=None, metavar="FILE",
                        help="Markdown file whose text goes under the --benchmarks-md header")
    parser.add_argument("--speed-steps", type=positive_int, default=20,
                        help="bench: timed steps per variant in the step-time measurements (median)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")


def _command_line() -> str:
    return "hyperadam-keras " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""


def run(args: argparse.Namespace) -> int:
    from hyperadam_keras.lab.eval import evaluate
    from hyperadam_keras.lab.eval import report
    from hyperadam_keras.lab.eval import suites

    try:
        for path in args.suite_file:
            suites.load_suite_file(path)
        chosen = [suites.get_suite(name) for name in args.suite or ["quick"]]
    except (OSError, ValueError, KeyError, TypeError) as error:  # a JSONDecodeError is a ValueError
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"evaluate: {message}", file=sys.stderr)
        return 2
    if args.list:
        print(suites.describe_suites())
        return 0
    for suite in chosen:
        fit = suite.kind == "fit"
        if not fit and args.baselines and "AdamW" in args.baselines:
            print(f"evaluate: --baselines AdamW: only fit suites (generalization) run AdamW, not {suite.name}",
                  file=sys.stderr)
            return 2
        for option, flag in (("max_relative_step", "--max-relative-step"), ("candidate_clip", "--candidate-clip"),
                             ("warmup_steps", "--warmup-steps")):
            if suite.kind == "bench" and hasattr(args, option):
                print(f"evaluate: {flag}: suite {suite.name} measures the default optimizer's time", file=sys.stderr)
                return 2
        if suite.kind == "bench" and args.baselines_from:
            print(f"evaluate: --baselines-from: suite {suite.name} measures time and reuses nothing", file=sys.stderr)
            return 2
        if not fit and args.no_hyperadam:
            print(f"evaluate: --no-hyperadam: only fit suites (generalization) run without HyperAdam, not "
                  f"{suite.name}", file=sys.stderr)
            return 2
        if not fit and args.task:
            print(f"evaluate: --task: only fit suites (generalization) run single tasks, not {suite.name}",
                  file=sys.stderr)
            return 2
        unknown = sorted(set(args.task or ()) - {t.name for t in suite.tasks})
        if fit and unknown:
            print(f"evaluate: --task {', '.join(unknown)}: not a task of {suite.name} "
                  f"(its tasks: {', '.join(t.name for t in suite.tasks)})", file=sys.stderr)
            return 2

    if args.baselines_from and not os.path.isdir(args.baselines_from):
        if len(chosen) > 1:
            print("evaluate: --baselines-from: a file serves one suite; for several give a directory holding "
                  "SUITE/SUITE.json", file=sys.stderr)
            return 2
        if not os.path.isfile(args.baselines_from):
            print(f"evaluate: --baselines-from {args.baselines_from}: no such file or directory", file=sys.stderr)
            return 2

    def baselines_from(suite) -> str | None:
        if not args.baselines_from or not os.path.isdir(args.baselines_from):
            return args.baselines_from
        path = os.path.join(args.baselines_from, suite.name, f"{suite.name}.json")
        return path if os.path.isfile(path) else None

    all_results, json_dirs = [], []
    if args.from_json:
        for path in args.from_json:
            results = report.load_json(path)
            out_dir = os.path.dirname(os.path.abspath(path))
            all_results.append(results)
            json_dirs.append(out_dir)
            with open(os.path.join(out_dir, f"{results['suite']}.md"), "w") as f:
                f.write(report.markdown(results) + "\n")
    else:
        command = _command_line() or None
        bundles = args.bundle or [None]
        hyperadam_options = {option: getattr(args, option) for option in
                             ("max_relative_step", "candidate_clip", "warmup_steps") if hasattr(args, option)}
        for suite in chosen:
            name = suite.name
            if len(bundles) > 1 and not suite.multi_bundle:
                print(f"note: suite {name} compares HyperAdam bundles side by side: {len(bundles)} given",
                      file=sys.stderr)
            if suite.kind == "bench":
                if args.cache_dir:
                    print(f"note: suite {name} measures time: --cache-dir is not used", file=sys.stderr)
                results = evaluate.run_bench(suite, bundle=bundles[0], seeds=args.seeds,
                                             tune_seeds=args.tune_seeds, progress=not args.quiet, command=command,
                                             jit_compile=not args.no_xla,
                                             speed_kwargs={"steps": args.speed_steps, "progress": not args.quiet})
            elif suite.kind == "fit":
                from hyperadam_keras.lab.eval.fit_suite import run_fit_suite
                results = run_fit_suite(suite, bundles=bundles[:1], seeds=args.seeds, tune_seeds=args.tune_seeds,
                                        baselines=args.baselines, progress=not args.quiet, command=command,
                                        keep_curves=not args.no_curves, cache_dir=args.cache_dir, tasks=args.task,
                                        include_hyperadam=not args.no_hyperadam,
                                        baselines_from=baselines_from(suite), hyperadam_options=hyperadam_options)
            else:
                results = evaluate.run_suite(suite, bundles=bundles, seeds=args.seeds, tune_seeds=args.tune_seeds,
                                             long=args.long, baselines=args.baselines, chunk_size=args.chunk_size,
                                             jit_compile=not args.no_xla, progress=not args.quiet,
                                             command=command, keep_curves=not args.no_curves,
                                             cache_dir=args.cache_dir, baselines_from=baselines_from(suite),
                                             hyperadam_options=hyperadam_options)
            out_dir = os.path.join(args.output_dir, suite.name)
            paths = report.write_report(results, out_dir)
            all_results.append(results)
            json_dirs.append(out_dir)
            print()
            print(report.final_loss_table(results) if results.get("tasks") and results.get("kind") != "bench"
                  else report.markdown(results))
            print()
            names = {"curves": "plot (loss curves)", "final": "plot (final loss per task)",
                     "json": "raw numbers (JSON)", "markdown": "report (Markdown)"}
            for kind, path in paths.items():
                print(f"{names.get(kind, kind)}: {path}")
            print(f"wall time: {results['seconds']:.0f} s")
            if results.get("cache"):
                cache = results["cache"]
                print(f"run cache {cache['directory']}: {cache['from_cache']} of {cache['runs']} runs reused, "
                      f"{cache['trained']} trained")
    if args.benchmarks_md:
        preamble = open(args.preamble).read() if args.preamble else ""
        out = os.path.dirname(os.path.abspath(args.benchmarks_md))
        with open(args.benchmarks_md, "w") as f:
            f.write(report.benchmarks_markdown(all_results, json_dirs, out, preamble))
        print(f"benchmarks: {args.benchmarks_md}")
    return 0
