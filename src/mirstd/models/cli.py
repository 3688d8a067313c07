"""`mirstd models`: list registered models."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    from mirstd.models import list_models

    for name, doc in list_models().items():
        print(f"{name:<16} {doc}")
    return 0
