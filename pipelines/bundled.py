"""The data the package ships: the arithmetic KG, its vocabulary, experiment configs, queries and rules.

The repository's ``data/`` folder is installed as the package ``neurosym_data`` (pyproject.toml), so a
wheel carries it and an editable install maps it back to ``data/``. It is found through
``importlib.resources``, never by a path relative to the source tree, so the commands read the same
files from a checkout, an editable install or a wheel, in any working folder.

A name that is not a file of the user's is looked up here: ``configs/mnist_addition.toml``,
``mnist_addition.toml`` (in the folder of its kind) and the repository path
``data/configs/mnist_addition.toml`` all name the same bundled file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from neurosym.errors import ConfigError

PACKAGE = "neurosym_data"
#: The bundled folders, by the kind of file they hold.
FOLDERS = {"configs": "*.toml", "queries": "*.rq", "rules": "*.rules"}
DEFAULT_CONFIG = "configs/digits_addition.toml"


def root() -> Path:
    """The bundled data folder (``data/`` of a checkout, ``site-packages/neurosym_data`` of a wheel)."""
    try:
        folder = resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise ConfigError(f"the bundled data (package {PACKAGE}) is not installed; reinstall neurosym "
                          "(pip install -e . in a checkout)") from None
    if not isinstance(folder, Path):  # e.g. a zipped install: the RDF and SQL loaders need real files
        raise ConfigError(f"the bundled data (package {PACKAGE}) is not a folder on disk ({folder}); "
                          "install neurosym unzipped")
    return folder


def find(name: str | Path, folder: str = "") -> Path | None:
    """The bundled file that relative ``name`` denotes, or None: ``name`` under the data folder (a
    leading ``data/`` dropped), else under its kind's ``folder`` (``configs``, ``queries``, ``rules``)."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        return None
    if relative.parts[:1] == ("data",):
        relative = Path(*relative.parts[1:])
    base = root()
    for candidate in (base / relative, base / folder / relative if folder else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def local_or_bundled(name: str | Path, folder: str = "") -> Path:
    """``name`` if it is a file, else the bundled file it names; an error naming both places if neither."""
    path = Path(name)
    if path.is_file():
        return path
    bundled = find(path, folder)
    if bundled is None:
        raise ConfigError(f"{name}: file not found (nor a bundled file of that name; 'neurosym data list' shows them)")
    return bundled


def default_config() -> Path:
    """The bundled digit-addition config that ``neurosym demo`` and a config-less ``train`` use."""
    return root() / DEFAULT_CONFIG


def listing() -> dict[str, list[Path]]:
    """The bundled files by folder (``""`` for the KG files at the top)."""
    base = root()
    files = {"": sorted(base.glob("*.ttl"))}
    files.update({folder: sorted((base / folder).glob(pattern)) for folder, pattern in FOLDERS.items()})
    return files
