"""Lets `fab` find xenfab's tasks (it looks for fabfile.py)."""

from tasks import ns  # noqa: F401
