"""Prompt optimization: the methods, one module each (`method` finds them), and the run
engine they share."""
