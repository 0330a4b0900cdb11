"""What users run: python -m scripts.NAME from the repository root (scripts/README.md)."""
