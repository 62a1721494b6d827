"""fly64_kedro: the synthetic fly64 dose/overlap study as a Kedro project."""

__version__ = "0.1.0"
