"""The files counterbench ships as package data (``harness/data/``), and where a path a user names is.

The scenarios, the seed article's API definition and templates, the locustfiles and the starter
scenario file of ``counterbench init``. In a source checkout ``harness/data/`` links to the
top-level folders, which stay the readable source; an installed wheel carries copies. A relative
path that does not exist where counterbench runs falls back to the shipped file of that name, so
``counterbench run`` and ``counterbench aws deploy`` work from any folder.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"  # harness/data, beside this package
SCENARIOS = "scenarios.yaml"
STARTER = DATA / "starter.yaml"
LOCUSTFILES = DATA / "locustfiles"


def locate(path: str | Path) -> Path:
    """``path`` as given when it exists (or is absolute); else the shipped file of that relative name, if any."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    shipped = DATA / p
    return shipped if shipped.exists() else p


def scenario_file(given: str | None) -> Path:
    """The scenario file: the one given with -f (as is: a missing one is an error, never swapped), else
    ./scenarios.yaml, else the shipped one."""
    return Path(given) if given is not None else locate(SCENARIOS)


def is_shipped(path: Path) -> bool:
    return path.resolve().is_relative_to(DATA.resolve()) or path.absolute().is_relative_to(DATA)
