"""tailored: a recommendation engine — data quality, splits, algorithms, trustworthy evaluation."""

__version__ = "0.1.0"
