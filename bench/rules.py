"""Benchmark: fixpoint of the bundled digit rules over N synthetic symbol assignments.

    python bench/rules.py --n 1000000 --json bench/results/rules.json

N images get a `hasConcept` fact to a random digit entity (confidence uniform in [0.5, 1]); N/2 pairs
over them get `first`/`second` facts; the arithmetic KG comes from data/arithmetic.ttl (rdflib) or,
when that file is missing, from the same facts built here. `fixpoint_seconds` is the whole
`evaluate` call, loading (term encoding) included; `timings` breaks it down.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kg.rules.engine import evaluate, load_rules  # noqa: E402
from _output import emit  # noqa: E402  (bench/ is on sys.path when a script runs)

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
SUBCLASS = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
NS = "https://w3id.org/neurosym/vocab#"
AR = "https://w3id.org/neurosym/arith#"


def kg_facts(path: Path) -> list[tuple[str, str, str, float]]:
    """The arithmetic KG as (s, p, o, 1.0) tuples."""
    if path.exists():
        import rdflib

        g = rdflib.Graph().parse(path)
        return [(str(s), str(p), str(o), 1.0) for s, p, o in g]
    facts = []
    classes = {"Digit": "Number", "Even": "Number", "Odd": "Number", "Prime": "Number", "Composite": "Number"}
    facts += [(AR + c, SUBCLASS, AR + sup, 1.0) for c, sup in classes.items()]
    for n in range(19):
        e = AR + f"n{n}"
        facts.append((e, RDF_TYPE, AR + ("Digit" if n < 10 else "Number"), 1.0))
        facts.append((e, RDF_TYPE, AR + ("Even" if n % 2 == 0 else "Odd"), 1.0))
        if n > 1:
            prime = all(n % k for k in range(2, n))
            facts.append((e, RDF_TYPE, AR + ("Prime" if prime else "Composite"), 1.0))
        if n < 18:
            facts.append((e, NS + "successor", AR + f"n{n + 1}", 1.0))
        facts += [(e, NS + "lessThan", AR + f"n{m}", 1.0) for m in range(n + 1, 19)]
    for a in range(10):
        for b in range(10):
            f = AR + f"add_{a}_{b}"
            facts += [(f, NS + "addend1", AR + f"n{a}", 1.0), (f, NS + "addend2", AR + f"n{b}", 1.0),
                      (f, NS + "sum", AR + f"n{a + b}", 1.0)]
    return facts


def digit_entities(kg: list[tuple[str, str, str, float]]) -> list[str]:
    digits = sorted({s for s, p, o, _ in kg if p == RDF_TYPE and o == AR + "Digit"})
    if len(digits) != 10:
        raise SystemExit(f"expected 10 entities typed arith:Digit in the KG, found {len(digits)}")
    return digits


def synthetic_facts(n: int, digits: list[str], seed: int) -> list[tuple[str, str, str, float]]:
    rng = np.random.default_rng(seed)
    concept = rng.integers(0, len(digits), n)
    conf = rng.uniform(0.5, 1.0, n)
    images = [f"urn:neurosym:bench:image:{i}" for i in range(n)]
    facts = [(img, NS + "hasConcept", digits[c], p) for img, c, p in zip(images, concept.tolist(), conf.tolist())]
    left, right = rng.integers(0, n, n // 2).tolist(), rng.integers(0, n, n // 2).tolist()
    for j, (a, b) in enumerate(zip(left, right)):
        pair = f"urn:neurosym:bench:pair:{j}"
        facts.append((pair, NS + "first", images[a], 1.0))
        facts.append((pair, NS + "second", images[b], 1.0))
    return facts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="symbol assignments (images); pairs = n/2")
    ap.add_argument("--rules", type=Path, default=ROOT / "data/rules/digits.rules")
    ap.add_argument("--kg", type=Path, default=ROOT / "data/arithmetic.ttl")
    ap.add_argument("--combine", choices=["product", "min"], default="product")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    t0 = time.perf_counter()
    rules = load_rules(args.rules)
    kg = kg_facts(args.kg)
    facts = kg + synthetic_facts(args.n, digit_entities(kg), args.seed)
    generate_seconds = time.perf_counter() - t0

    result = evaluate(rules, facts, combine=args.combine)
    out = {
        "n_assignments": args.n,
        "n_pairs": args.n // 2,
        "n_input_facts": len(facts),
        "kg_source": str(args.kg.relative_to(ROOT)) if args.kg.exists() else "built in bench/rules.py",
        "combine": args.combine,
        "fixpoint_seconds": round(result.seconds, 3),
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "generate_seconds": round(generate_seconds, 3),
        "iterations": result.iterations,
        "new_per_iteration": result.new_per_iteration,
        "derived_facts": len(result.derived),
        "derived_per_rule": result.derived.counts_by_rule(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }
    emit(out, args.json)


if __name__ == "__main__":
    main()
