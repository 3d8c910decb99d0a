#!/usr/bin/env python3
"""Run every benchmark in bench/ (``bench_*.py``), or the ones named: ``python bench/run.py [--quick] [mime lmtp]``.

Each benchmark prints its own table with ratios against a baseline measured in the same process run.
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
    for path in files:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"\n=== {path.stem} ===", flush=True)
        started = time.perf_counter()
        module.main(["--quick"] if args.quick else [])
        print(f"({path.stem} took {time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
