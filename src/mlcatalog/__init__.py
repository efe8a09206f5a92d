"""mlcatalog: the open catalog for machine-learning assets."""

__version__ = "0.1.0"
