"""Dataset import: word alignments, story audio and fMRI into a store; imported features.

``import_dataset`` builds a new store from a word alignment (Gentle CSV or JSON, Praat
TextGrid), the story audio and (optionally) ROI-level fMRI or GIfTI / CIFTI / NIfTI
files as vertices, voxels or averaged into parcels; ``import_bids`` imports stories
of a Narratives-style BIDS tree into a store of stories (``scan_bids`` says what is
there); ``write_fmri`` adds or replaces the fmri group
of an existing store; ``import_features`` stores features computed elsewhere;
``example_store`` writes a small simulated store for examples.
See ``docs/datasets.md``.
"""

from featstore.datasets.align import Alignment, read_alignment
from featstore.datasets.alignment_formats import read_word_alignment
from featstore.datasets.atlas import hcp_mmp_rois, roi_names_from_file
from featstore.datasets.audio import read_audio
from featstore.datasets.bids import scan_bids
from featstore.datasets.bids_import import import_bids
from featstore.datasets.brain import read_brain_fmri
from featstore.datasets.byo import import_features
from featstore.datasets.example import example_store
from featstore.datasets.fmri import FmriSource, read_fmri
from featstore.datasets.fmri_group import open_fmri, write_fmri
from featstore.datasets.importer import ImportReport, import_dataset
from featstore.datasets.stimulus_group import open_stimulus
from featstore.datasets.timeline import assign_tr, stimulus_sha256

__all__ = [
    "Alignment",
    "FmriSource",
    "ImportReport",
    "assign_tr",
    "example_store",
    "hcp_mmp_rois",
    "import_bids",
    "import_dataset",
    "import_features",
    "open_fmri",
    "open_stimulus",
    "read_alignment",
    "read_audio",
    "read_brain_fmri",
    "read_fmri",
    "read_word_alignment",
    "roi_names_from_file",
    "scan_bids",
    "stimulus_sha256",
    "write_fmri",
]
