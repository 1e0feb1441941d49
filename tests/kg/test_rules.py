"""Rules: the syntax, the semi-naive fixpoint against a naive reference, confidences, errors."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from kg.rules.engine import Atom, Const, RuleError, Var, evaluate, load_rules, parse_rules

EX = "http://example.org/"
NS = "https://w3id.org/neurosym/vocab#"
AR = "https://w3id.org/neurosym/arith#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
SUBCLASS = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
DIGITS_RULES = Path(__file__).resolve().parents[2] / "data/rules/digits.rules"

TC = """
@prefix ex: <http://example.org/> .
[base] ex:path(?x, ?y) :- ex:edge(?x, ?y).
[step] ex:path(?x, ?z) :- ex:edge(?x, ?y), ex:path(?y, ?z).
"""


def edges(*pairs, conf=1.0):
    return [(EX + a, EX + "edge", EX + b, conf) for a, b in pairs]


def derived_set(result):
    return {(s, p, o) for s, p, o, _, _ in result.derived}


# -- syntax --------------------------------------------------------------------------------------

def test_parse_names_ids_and_sugar():
    rs = parse_rules("""
        @prefix ar: <https://w3id.org/neurosym/arith#> .
        @predicate follows <http://example.org/follows#x> .   # '#' inside an IRI is not a comment
        [transitive_subclass] subClassOf(?a, ?c) :- subClassOf(?a, ?b), subClassOf(?b, ?c).
        isa(?x, ?c) :- hasConcept(?x, ?e),
                       type(?e, ?c).
        [prime] ar:Prime(?x) :- follows(?x, <http://example.org/y>), label(?x, "two \\"2\\"").
        ar:Digit(ar:d2).
    """, source="data/rules/my.rules")
    assert [r.id for r in rs] == ["transitive_subclass", "my:5", "prime", "my:8"]
    assert rs["transitive_subclass"].head == Atom(SUBCLASS, (Var("a"), Var("c")))
    isa = rs["my:5"]
    assert isa.line == 5 and isa.head.predicate == NS + "isa"
    assert isa.body[1] == Atom(RDF_TYPE, (Var("e"), Var("c")))
    prime = rs["prime"]
    assert prime.head == Atom(RDF_TYPE, (Var("x"), Const(AR + "Prime")))  # unary atom = rdf:type
    assert prime.body[0] == Atom("http://example.org/follows#x", (Var("x"), Const(EX + "y")))
    assert prime.body[1].args[1] == Const('two "2"', literal=True)
    assert rs["my:8"].body == ()


def test_round_trip_through_text():
    rs = parse_rules(DIGITS_RULES.read_text() + TC + '[lit] ex:named(?x) :- label(?x, "a \\\\ b").\n')
    again = parse_rules(rs.to_text())
    assert again.rules == rs.rules
    assert again.to_text() == rs.to_text()


@pytest.mark.parametrize("text, line, fragment", [
    ("p(?x, ?y) :- q(?x, ?y)", 1, "expected ',' or '.'"),
    ("\n\nfoo:p(?x, ?y) :- q(?x, ?y).", 3, "unknown prefix 'foo'"),
    ("p(?x, a) :- q(?x, ?y).", 1, "bare name 'a' as a constant"),
    ("p(?x, ?y, ?z) :- q(?x, ?y).", 1, "atoms take one or two"),
    ("@base <http://x/> .", 1, "unknown directive"),
    ("[r] p(?x, ?y) :- q(?x, ?y).\n[r] p(?x, ?y) :- q(?y, ?x).", 2, "duplicate rule id"),
    ("p(?x, ?y) :- q(?x, ?y) ; r(?x).", 1, "unexpected character ';'"),
])
def test_syntax_errors_name_file_and_line(text, line, fragment):
    with pytest.raises(RuleError) as err:
        parse_rules(text, source="bad.rules")
    assert isinstance(err.value, ValueError)
    assert err.value.line == line and str(err.value).startswith(f"bad.rules:{line}:")
    assert fragment in str(err.value)


def test_unbound_head_variable_names_rule_and_variable():
    with pytest.raises(RuleError) as err:
        parse_rules("# header\n[leaky] ex:p(?x, ?z) :- ex:q(?x, ?y).".replace("ex:", "ns:"), source="x.rules")
    e = err.value
    assert (e.source, e.line, e.rule_id) == ("x.rules", 2, "leaky")
    assert "?z" in str(e) and "x.rules:2: rule [leaky]" in str(e)


# -- evaluation ----------------------------------------------------------------------------------

def test_transitive_closure_derives_exactly_the_reachable_pairs():
    result = evaluate(parse_rules(TC), edges(("a", "b"), ("b", "c"), ("c", "d")))
    assert derived_set(result) == {(EX + x, EX + "path", EX + y) for x, y in
                                   [("a", "b"), ("b", "c"), ("c", "d"), ("a", "c"), ("b", "d"), ("a", "d")]}
    assert result.derived.counts_by_rule() == {"base": 3, "step": 3}
    assert result.iterations == 4  # base; length 2; length 3; nothing new


def test_only_new_facts_are_reported():
    rs = parse_rules("[tc] subClassOf(?a, ?c) :- subClassOf(?a, ?b), subClassOf(?b, ?c).")
    kg = [(EX + "A", SUBCLASS, EX + "B", 1.0), (EX + "B", SUBCLASS, EX + "C", 1.0), (EX + "A", SUBCLASS, EX + "C", 1.0)]
    assert len(evaluate(rs, kg).derived) == 0


@pytest.mark.parametrize("combine, expected", [("product", {"ac": 0.4 * 0.5, "ad": 0.4 * 0.5 * 0.9, "bd": 0.45}),
                                               ("min", {"ac": 0.4, "ad": 0.4, "bd": 0.5})])
def test_confidence_product_or_min_keeps_the_best_derivation(combine, expected):
    facts = [(EX + "a", EX + "edge", EX + "b", 0.4), (EX + "b", EX + "edge", EX + "c", 0.5),
             (EX + "c", EX + "edge", EX + "d", 0.9),
             (EX + "a", EX + "edge", EX + "x", 0.1), (EX + "x", EX + "edge", EX + "c", 0.1)]  # a worse a->c
    result = evaluate(parse_rules(TC), facts, combine=combine)
    got = {s[len(EX):] + o[len(EX):]: (c, r) for s, p, o, c, r in result.derived}
    for pair, conf in expected.items():
        assert got[pair][0] == pytest.approx(conf)
        assert got[pair][1] == "step"
    assert got["ab"] == (pytest.approx(0.4), "base")


def test_unknown_predicate_names_rule_and_predicate():
    rs = parse_rules(TC + "[typo] ex:reach(?x, ?y) :- ex:pth(?x, ?y).", source="tc.rules")
    with pytest.raises(RuleError) as err:
        evaluate(rs, edges(("a", "b")))
    assert err.value.rule_id == "typo" and err.value.line == 5
    assert f"<{EX}pth>" in str(err.value) and str(err.value).startswith("tc.rules:5: rule [typo]")


def test_declared_predicate_without_facts_is_fine():
    rs = parse_rules("@predicate hasConcept .\nisa(?x, ?c) :- hasConcept(?x, ?e), type(?e, ?c).")
    result = evaluate(rs, [(EX + "two", RDF_TYPE, EX + "Prime", 1.0)])
    assert len(result.derived) == 0 and result.iterations == 1


def test_iteration_bound_names_the_rules_still_producing():
    chain = edges(*[(f"n{i}", f"n{i + 1}") for i in range(10)])
    rs = parse_rules(TC, source="tc.rules")
    with pytest.raises(RuleError) as err:
        evaluate(rs, chain, max_iterations=2)
    assert err.value.rule_id == "step" and "[step] (tc.rules:4)" in str(err.value)
    assert "[base]" not in str(err.value)  # base finished in round 1
    assert evaluate(rs, chain, max_iterations=11).iterations == 11


def test_bad_confidence_is_rejected():
    with pytest.raises(RuleError, match=r"confidence nan"):
        evaluate(parse_rules(TC), edges(("a", "b"), conf=float("nan")))
    with pytest.raises(ValueError, match="combine"):
        evaluate(parse_rules(TC), [], combine="sum")


# -- semi-naive == naive -------------------------------------------------------------------------

def naive(rules, facts, combine):
    """Reference: every rule over every fact, round after round, until nothing gets better."""
    best = {(s, p, o): c for s, p, o, c in facts}
    op = (lambda a, b: a * b) if combine == "product" else min

    def solutions(body, env, conf):
        if not body:
            yield env, conf
            return
        atom, rest = body[0], body[1:]
        for (s, p, o), c in list(best.items()):
            if p != atom.predicate:
                continue
            e = dict(env)
            if all(_unify(t, v, e) for t, v in zip(atom.args, (s, o))):
                yield from solutions(rest, e, op(conf, c))

    changed = True
    while changed:
        changed = False
        for rule in rules:
            for env, conf in list(solutions(rule.body, {}, 1.0)):
                s, o = (env[t.name] if isinstance(t, Var) else t.value for t in rule.head.args)
                key = (s, rule.head.predicate, o)
                if conf > best.get(key, -1.0) + 1e-9:
                    best[key], changed = conf, True
    given = {(s, p, o) for s, p, o, _ in facts}
    return {k: c for k, c in best.items() if k not in given}


def _unify(term, value, env):
    if isinstance(term, Const):
        return term.value == value
    return env.setdefault(term.name, value) == value


RANDOM_RULES = """
@prefix ex: <http://example.org/> .
[base] ex:path(?x, ?y) :- ex:edge(?x, ?y).
[left] ex:path(?x, ?z) :- ex:path(?x, ?y), ex:path(?y, ?z).
[loop] ex:Cyclic(?x) :- ex:path(?x, ?x).
[from_a] ex:fromA(?y) :- ex:path(ex:n0, ?y), ex:colour(?y, ?c).
[tri] ex:tri(?x, ?z) :- ex:edge(?x, ?y), ex:colour(?y, ex:red), ex:edge(?y, ?z), ex:path(?z, ?x).
[red] ex:Hot(?x) :- ex:Cyclic(?x), ex:colour(?x, ex:red).
"""


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("combine", ["product", "min"])
def test_semi_naive_equals_naive_on_random_graphs(seed, combine):
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(7)]
    facts = [(EX + a, EX + "edge", EX + b, round(rng.uniform(0.2, 1.0), 3))
             for a, b in itertools.product(nodes, nodes) if rng.random() < 0.2]
    facts += [(EX + n, EX + "colour", EX + rng.choice(["red", "blue"]), rng.uniform(0.5, 1)) for n in nodes]
    rs = parse_rules(RANDOM_RULES)
    result = evaluate(rs, facts, combine=combine)
    got = {(s, p, o): c for s, p, o, c, _ in result.derived}
    want = naive(rs, facts, combine)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-9)


# -- the bundled digit rules ---------------------------------------------------------------------

def tiny_arithmetic_kg():
    kg = [(AR + c, SUBCLASS, AR + "Number", 1.0) for c in ("Digit", "Prime", "Even", "Odd", "Composite")]
    kg += [(AR + "PrimeDigit", SUBCLASS, AR + "Prime", 1.0)]  # exercises the subclass closure
    for n in range(4):
        kg += [(AR + f"d{n}", RDF_TYPE, AR + "Digit", 1.0), (AR + f"d{n}", RDF_TYPE, AR + ("Odd" if n % 2 else "Even"), 1.0)]
    kg += [(AR + "d2", RDF_TYPE, AR + "PrimeDigit", 1.0), (AR + "d3", RDF_TYPE, AR + "Prime", 1.0)]
    kg += [(AR + f"d{n}", NS + "successor", AR + f"d{n + 1}", 1.0) for n in range(3)]
    for a, b in itertools.product(range(4), range(4)):
        if a + b < 4:
            f = AR + f"add{a}{b}"
            kg += [(f, NS + "addend1", AR + f"d{a}", 1.0), (f, NS + "addend2", AR + f"d{b}", 1.0),
                   (f, NS + "sum", AR + f"d{a + b}", 1.0)]
    return kg


def test_digit_rules_on_a_tiny_kg():
    img = {name: f"urn:img:{name}" for name in ("two", "three", "one", "zero")}
    shows = {"two": ("d2", 0.9), "three": ("d3", 0.8), "one": ("d1", 0.5), "zero": ("d0", 1.0)}
    facts = tiny_arithmetic_kg() + [(img[n], NS + "hasConcept", AR + d, c) for n, (d, c) in shows.items()]
    pairs = {"p23": ("two", "three"), "p12": ("one", "two"), "p01": ("zero", "one")}
    for p, (x, y) in pairs.items():
        facts += [(f"urn:pair:{p}", NS + "first", img[x], 1.0), (f"urn:pair:{p}", NS + "second", img[y], 1.0)]
    result = evaluate(load_rules(DIGITS_RULES), facts)
    got = {(s, p, o): (c, r) for s, p, o, c, r in result.derived}

    assert got[(img["two"], NS + "isa", AR + "Prime")] == (pytest.approx(0.9), "isa")
    assert (img["two"], NS + "isa", AR + "Number") in got
    assert (img["one"], NS + "isa", AR + "Prime") not in got
    both_prime = {s for (s, p, o) in got if p == RDF_TYPE and o == NS + "BothPrimePair"}
    assert both_prime == {"urn:pair:p23"}
    assert got[("urn:pair:p23", RDF_TYPE, NS + "BothPrimePair")] == (pytest.approx(0.9 * 0.8), "both_prime")
    successor = {s for (s, p, o) in got if p == RDF_TYPE and o == NS + "SuccessorPair"}
    assert successor == {"urn:pair:p23", "urn:pair:p12", "urn:pair:p01"}
    sums = {s: o for (s, p, o) in got if p == NS + "pairSum"}
    assert sums == {"urn:pair:p12": AR + "d3", "urn:pair:p01": AR + "d1"}  # 2+3 is not in the tiny KG
    assert got[("urn:pair:p12", NS + "pairSum", AR + "d3")][0] == pytest.approx(0.5 * 0.9)


def test_digit_rules_run_without_model_output():
    result = evaluate(load_rules(DIGITS_RULES), tiny_arithmetic_kg())
    assert set(result.derived.counts_by_rule()) == {"subclass_transitive", "type_inheritance"}
