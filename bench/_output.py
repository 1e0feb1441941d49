"""What the benchmarks share: the machine's CPU for their records, and what every one does last:
print its JSON object and, if asked, write it to a file."""

from __future__ import annotations

import json
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (the development machines vary: timings are only comparable on one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{platform.machine()} {line.partition(':')[2].strip()}"
    except OSError:
        pass
    return platform.machine()


def emit(result: dict, path: str | Path | None, sort_keys: bool = False) -> None:
    text = json.dumps(result, indent=2, sort_keys=sort_keys)
    print(text)
    if path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
