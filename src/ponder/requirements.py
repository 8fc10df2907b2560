"""The oldest releases of the optional dependencies that ponder runs on, checked before use.

These are pyproject.toml's floors, found by running the hf and lab tests on older releases (stop
38's note on issue 13): below them the failure is a traceback from deep inside transformers or
TRL, so the backend and ``ponder train`` check first and say which release is needed.
"""

from __future__ import annotations

import importlib.metadata

# transformers 5.4: the cache layers ``models.kv_prefix`` builds on, and the shipped lab models'
# tokenizer class. 5.23: SFTConfig's ``activation_checkpointing``. trl 1.0: the GRPO the lab uses.
HF_FLOORS = {"transformers": "5.4"}
TRAIN_FLOORS = {"transformers": "5.23", "trl": "1.0"}


def installed(package: str) -> str:
    """The installed release of ``package`` (its distribution's version)."""
    return importlib.metadata.version(package)


def too_old(floors: dict[str, str]) -> list[str]:
    """"transformers >= 5.4 (this is 5.3.2)" for each installed package older than its floor. A
    package whose release cannot be read (no metadata, an odd version string) is not refused."""
    from packaging.version import InvalidVersion, Version

    out = []
    for package, floor in floors.items():
        try:
            have = installed(package)
            older = Version(Version(have).base_version) < Version(floor)  # 5.4.0.dev0 is 5.4
        except (importlib.metadata.PackageNotFoundError, InvalidVersion):
            continue
        if older:
            out.append(f"{package} >= {floor} (this is {have})")
    return out
