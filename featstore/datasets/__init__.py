"""Importing stimuli and fMRI into a store, and the bundled demo dataset."""
