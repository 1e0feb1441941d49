"""What an RDF view reflects: its ``state.json``, the store id, the view vocabulary and the SQL write
counter of every graph it holds.

The file is replaced atomically (written beside, then renamed), so a crash leaves the old state or the
new one, never half of either; a sync or a feed marks what it is about to change before changing it,
so a crash in between makes the next sync reload those graphs. An in-memory view has a state and no file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class ViewState:
    """The fields of ``state.json`` (``store_id``, ``vocabulary``, ``graphs``: graph -> write counter),
    and the view directory they are saved in (None for a view in memory)."""

    FILE = "state.json"

    def __init__(self, fields: dict | None = None, directory: Path | None = None):
        self.fields = fields if fields is not None else {"store_id": None, "graphs": {}}
        self.directory = directory

    @property
    def graphs(self) -> dict[str, int]:
        """Graph -> the SQL write counter the view holds it at (changed in place by syncs and feeds)."""
        return self.fields["graphs"]

    @property
    def store_id(self) -> str | None:
        return self.fields.get("store_id")

    @property
    def vocabulary(self) -> int | None:
        return self.fields.get("vocabulary")

    @classmethod
    def read(cls, directory: Path) -> ViewState:
        """The state saved in ``directory``; an empty one where the file is missing or unreadable."""
        try:
            fields = json.loads((directory / cls.FILE).read_text())
            if isinstance(fields.get("graphs"), dict):
                return cls(fields, directory)
        except (OSError, ValueError):
            pass
        return cls(None, directory)

    @classmethod
    def of(cls, store_id: str, vocabulary: int | None, graphs: dict[str, int], directory: Path | None) -> ViewState:
        """The state of a view that holds exactly ``graphs`` of store ``store_id``."""
        return cls({"store_id": store_id, "vocabulary": vocabulary, "graphs": graphs}, directory)

    @classmethod
    def write_empty(cls, directory: Path) -> None:
        """The state file of a new, empty view directory."""
        (directory / cls.FILE).write_text(json.dumps({"store_id": None, "graphs": {}}))

    def save(self) -> None:
        """Replace the file atomically (nothing to do in memory)."""
        if self.directory is None:
            return
        tmp = self.directory / "state.tmp"
        tmp.write_text(json.dumps(self.fields, indent=1, sort_keys=True))
        os.replace(tmp, self.directory / self.FILE)

    def snapshot(self) -> dict:
        """A copy of the fields that later syncs do not change (to tell whether the view moved since)."""
        return {**self.fields, "graphs": dict(self.fields.get("graphs", {}))}
