"""Custom Kedro datasets of the project."""
