"""How a configured path is expanded: ``~``, ``$VARS``, and the lab's ``$XENFAB_LAB_DIR``.

The bottom layer: the config expands its paths with it, and so do the backends that check
their own path options (xl's ``auto_dir``, xe's ``pool_conf``).
"""

from __future__ import annotations

import os

DEFAULT_LAB_DIR = "~/.cache/xenfab/lab"


def expand_path(value: str) -> str:
    """Expand ``~`` and ``$VARS``; ``$XENFAB_LAB_DIR`` defaults to the lab's default directory."""
    lab = os.environ.get("XENFAB_LAB_DIR") or DEFAULT_LAB_DIR
    text = value.replace("${XENFAB_LAB_DIR}", lab).replace("$XENFAB_LAB_DIR", lab)
    return os.path.expanduser(os.path.expandvars(text))
