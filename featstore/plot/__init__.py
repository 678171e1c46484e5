"""Brain maps and comparison figures (matplotlib/nilearn imported lazily)."""
