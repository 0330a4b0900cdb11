"""The GPU device check: python -m gpu.NAME from the repository root (gpu/README.md)."""
