"""The featstore Zarr store (schema version 1): create, write, read, list, validate.

Every group opens with plain ``xarray.open_zarr(path, group=..., consolidated=False)``.
See ``docs/store-spec.md`` for the schema.
"""

from featstore.store._schema import SCHEMA_VERSION
from featstore.store.encoding import array_compressors
from featstore.store.features import (
    FeatureSetInfo,
    feature_set_attrs,
    list_feature_sets,
    open_feature_set,
    resolve_feature_group,
    resolve_feature_key,
    write_feature_set,
)
from featstore.store.groups import (
    create_store,
    delete_group,
    group_attrs,
    group_exists,
    is_complete,
    open_group,
    open_root,
    root_attrs,
    store_n_tr,
    store_tr_seconds,
    update_group_attrs,
    write_group,
)
from featstore.store.io_errors import reading_data
from featstore.store.listing import GroupInfo, list_groups
from featstore.store.paths import (
    feature_group,
    model_key,
    parse_window,
    result_group,
    window_name,
)
from featstore.store.remove import remove_feature_sets, remove_run
from featstore.store.staging import (
    BlockStage,
    StagedArray,
    StagedGroup,
    group_lock,
    list_staged,
    settings_hash,
)
from featstore.store.validate import Problem, validate

__all__ = [
    "SCHEMA_VERSION",
    "BlockStage",
    "FeatureSetInfo",
    "GroupInfo",
    "Problem",
    "StagedArray",
    "StagedGroup",
    "array_compressors",
    "create_store",
    "delete_group",
    "feature_group",
    "feature_set_attrs",
    "group_attrs",
    "group_exists",
    "group_lock",
    "is_complete",
    "list_feature_sets",
    "list_groups",
    "list_staged",
    "model_key",
    "open_feature_set",
    "open_group",
    "open_root",
    "parse_window",
    "reading_data",
    "remove_feature_sets",
    "remove_run",
    "resolve_feature_group",
    "resolve_feature_key",
    "result_group",
    "root_attrs",
    "settings_hash",
    "store_n_tr",
    "store_tr_seconds",
    "update_group_attrs",
    "validate",
    "window_name",
    "write_feature_set",
    "write_group",
]
