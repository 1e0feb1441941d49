"""Errors the knowledge store raises for input a user can fix.

All are ``ValueError`` subclasses so that the CLI turns them into one clean line and a non-zero exit.
"""

from __future__ import annotations


class KGError(ValueError):
    """A knowledge-store error caused by user input (file, query, run, entity, array).

    ``detail`` is what the message leaves out (e.g. a parser's whole report), for ``--debug``.
    """

    def __init__(self, message: str = "", detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class RDFParseError(KGError):
    """An RDF file could not be parsed; the message names the file, the line and the parser's reason."""


class SparqlSyntaxError(KGError):
    """A SPARQL query could not be parsed; the message gives the position."""


class ReadOnlyQueryError(KGError):
    """A SPARQL update was sent where only read queries (SELECT, ASK, CONSTRUCT, DESCRIBE) are allowed."""


class UnknownRunError(KGError):
    """A run id that the store does not hold."""


class UnknownEntityError(KGError):
    """An entity IRI that no loaded knowledge graph defines."""
