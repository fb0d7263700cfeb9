"""Vesalius: an electronic health record with the imaging archive inside it."""

__version__ = "0.1.0"
