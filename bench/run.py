#!/usr/bin/env python3
"""Run every benchmark in bench/ (``bench_*.py``), or the ones named: ``python bench/run.py [--quick] [mime lmtp]``.

Each benchmark prints its own table with ratios against a baseline measured in the same process run. A benchmark
that fails (or whose external tool is missing, like ImapTest for ``imap``) is reported and the others still run;
the exit status is then 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (file names without bench_ and .py)")
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test of the benchmarks)")
    args = parser.parse_args()
    files = sorted(HERE.glob("bench_*.py"))
    if args.names:
        files = [f for f in files if f.stem.removeprefix("bench_") in args.names]
        if not files:
            parser.error(f"no benchmark named {' '.join(args.names)}")
    sys.path.insert(0, str(HERE.parent))
    failed: list[str] = []
    for path in files:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is being built
        spec.loader.exec_module(module)
        print(f"\n=== {path.stem} ===", flush=True)
        started = time.perf_counter()
        try:
            module.main(["--quick"] if args.quick else [])
        except SystemExit as exc:  # a benchmark that fails (or lacks a tool) does not stop the others
            if exc.code not in (None, 0):
                if not isinstance(exc.code, int):
                    print(exc.code, file=sys.stderr)
                failed.append(path.stem)
        print(f"({path.stem} took {time.perf_counter() - started:.1f} s)", flush=True)
    if failed:
        print(f"\nFAILED: {' '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
