"""EEG/MEG analyses on the store's ``eeg`` group: word-locked epochs, temporal response
functions (``evaluate trf``) and time-resolved representational alignment
(``evaluate similarity-eeg``). The numerics they call live in ``encoding/`` and
``metrics/``; this package reads the store and writes ``results/<run_id>``."""
