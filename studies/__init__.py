"""The studies behind the shipped numbers: python -m studies.NAME from the repository root (studies/README.md)."""
