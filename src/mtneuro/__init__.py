"""MTNeuro: the MTNeuro benchmark as a Kedro project."""

__version__ = "0.1.0"
