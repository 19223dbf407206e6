"""javabase: a declarative build pipeline for Java base images."""

__version__ = "0.1.0"
