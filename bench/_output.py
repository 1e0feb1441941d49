"""What every benchmark does last: print its JSON object and, if asked, write it to a file."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, path: str | Path | None, sort_keys: bool = False) -> None:
    text = json.dumps(result, indent=2, sort_keys=sort_keys)
    print(text)
    if path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
