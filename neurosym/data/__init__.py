"""Datasets: the bundled 8x8 digits and tuples of inputs labelled by a relation."""
