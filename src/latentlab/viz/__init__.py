"""Figures: image grids, loss curves, architecture tables and diagrams."""
