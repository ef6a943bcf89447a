"""Blame-language checks (filled in by issue 3)."""


def check_blame_kb(kb, per_path) -> None:
    return None
