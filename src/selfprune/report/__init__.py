"""Plots and the HTML/Markdown reports."""
