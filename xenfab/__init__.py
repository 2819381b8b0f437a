"""xenfab: bring a Xen cluster's guests back safely, fast, and in a layout that respects its rules."""

__version__ = "0.1.0"
