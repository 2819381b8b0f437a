"""xenfab's tasks for `invoke`/`fab`: the collection lives in the xenfab package."""

from xenfab.tasks import ns

__all__ = ["ns"]
