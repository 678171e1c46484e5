"""Figures of a store's results (matplotlib imported lazily, pyplot never).

Every ``plot_*`` function takes a results group (an encoding run or an analysis), draws
into ``axes`` or a new pyplot-free figure, saves it to ``output_file`` when given and
returns the figure, as nilearn's plotting functions do.

Brain maps (:mod:`featstore.plot.brain`) and the EEG figures (:mod:`featstore.plot.eeg`)
are reached through the report and the command line for now.
"""

from featstore.plot.analyses import (
    metric_agreement,
    plot_lowlevel_drop,
    plot_rsa_curves,
    plot_similarity,
)
from featstore.plot.compare import (
    plot_best_layers,
    plot_fusion_heatmap,
    plot_layer_profiles,
    plot_roi_groups,
    plot_roi_top,
    plot_window_trends,
)

__all__ = [
    "metric_agreement",
    "plot_best_layers",
    "plot_fusion_heatmap",
    "plot_layer_profiles",
    "plot_lowlevel_drop",
    "plot_roi_groups",
    "plot_roi_top",
    "plot_rsa_curves",
    "plot_similarity",
    "plot_window_trends",
]
