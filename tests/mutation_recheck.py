"""Re-run the mutants that ``mutmut run`` did not kill, each in a fresh process, and say which of them
the tests kill, which they let live, and which make them run forever.

mutmut's verdicts for a mutant that was not killed are not always what a plain test run gives. Seen
here with mutmut 3.8.1: a child forked from a process that had already run tests hung (RocksDB, OpenMP)
and was reported as a timeout although its test failed in 0.2 s on its own (hence
``process_isolation = forkserver`` in setup.cfg); and ``kg.alignment.x_label_free__mutmut_79``
(``improved = True`` inside ``while improved``, an endless loop) was reported as survived. So the score
in docs/testing.md counts the verdicts of this script:

    python tests/mutation_recheck.py [--jobs 2] [--timeout 180] [--json mutation_recheck.json]

From the repository root after ``mutmut run``: for every mutant mutmut reports as survived or timed
out, the test files of setup.cfg's selection in the mutant's package (``tests/neurosym/`` for
``neurosym.*``, ``tests/kg/`` for ``kg.*``; whole files, so that tests written after the run count too:
copy them into ``mutants/tests/`` first) run in ``mutants/`` with ``MUTANT_UNDER_TEST`` set, one process
each, stopping at the first failure. A line says ``killed`` (a test fails), ``survived`` (all
pass) or ``timeout`` (still running after ``--timeout`` seconds: an endless loop or a blown-up
contraction, which a test run never finishes either). Then the counts per module.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RECHECKED = ("survived", "timeout")


def mutmut(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "mutmut", *args], capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def verdicts_of_mutmut() -> dict[str, str]:
    """Every mutant's last verdict from mutmut: killed, survived, timeout, no tests, ..."""
    return dict(line.rsplit(": ", 1) for line in mutmut("results", "--all", "true") if ": " in line)


def selection() -> list[str]:
    """The test files of setup.cfg's ``[mutmut] pytest_add_cli_args_test_selection``."""
    config = configparser.ConfigParser()
    config.read("setup.cfg")
    return config["mutmut"]["pytest_add_cli_args_test_selection"].split()


def verdict(name: str, tests: list[str], timeout_s: float) -> str:
    env = os.environ | {"MUTANT_UNDER_TEST": name, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "--tb=no", "-p", "no:cacheprovider", "-k", "not postgresql", *tests]
    try:
        done = subprocess.run(command, cwd="mutants", env=env, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return "timeout"
    if done.returncode in (0, 1):
        return "survived" if done.returncode == 0 else "killed"
    if done.returncode == 5:
        return "no tests"
    raise SystemExit(f"{name}: pytest exited {done.returncode}, not a verdict:\n{done.stdout.decode()[-2000:]}")


def module(name: str) -> str:
    return name.split(".x", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="mutants checked at once")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds a mutant's tests may run")
    parser.add_argument("--json", default=None, help="also write {mutant: verdict} here")
    parser.add_argument("--sample-killed", type=int, default=0,
                        help="also re-run this many of mutmut's kills (a fixed random sample): each must fail here too")
    args = parser.parse_args()
    if not Path("mutants").is_dir():
        raise SystemExit("no mutants/ here: run `mutmut run` from the repository root first")
    verdicts = verdicts_of_mutmut()
    names = [name for name, status in verdicts.items() if status in RECHECKED]
    killed = sorted(name for name, status in verdicts.items() if status == "killed")
    names += random.Random(0).sample(killed, min(args.sample_killed, len(killed)))
    tests = selection()
    with ThreadPoolExecutor(args.jobs) as pool:
        def check(name: str) -> str:
            package = f"tests/{name.split('.', 1)[0]}/"
            return verdict(name, [t for t in tests if t.startswith(package)], args.timeout)

        for name, found in zip(names, pool.map(check, names)):
            print(f"{found:9s} (mutmut: {verdicts[name]}) {name}", flush=True)
            verdicts[name] = found
    per_module: dict[str, Counter] = defaultdict(Counter)
    for name, status in verdicts.items():
        per_module[module(name)][status] += 1
    for name, counts in sorted(per_module.items()):
        detected = counts["killed"] + counts["timeout"]
        print(f"{name}: {detected}/{sum(counts.values())} = {detected / sum(counts.values()):.1%} detected {dict(counts)}")
    if args.json:
        Path(args.json).write_text(json.dumps(verdicts, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
