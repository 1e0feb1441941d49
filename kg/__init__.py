"""kg: the symbolic half: store, RDF view, SPARQL, rules, alignment."""
