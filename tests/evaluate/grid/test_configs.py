import numpy as np
import pytest

from featstore import store as fs
from featstore.errors import InputError
from featstore.evaluate.runs.configs import (
    BANDED,
    CONCAT,
    Config,
    FeatureLayer,
    StoreCatalog,
    build_configs,
    select_layers,
    self_fusion_notices,
)
from featstore.evaluate.runs.labels import (
    match_label,
    parse_config,
    parse_fusion_request,
    parse_model_request,
    parse_windows,
)
from featstore.layers import auto_layers, parse_layers
from featstore.store.features import feature_dataset
from tests.evaluate.grid.conftest import AUDIO_KEY, TEXT_KEY


def test_auto_layers_relative_depth_rule():
    assert auto_layers(12) == [1, 4, 6, 9, 12]
    assert auto_layers(6) == [1, 2, 4, 5, 6]
    assert auto_layers(3) == [1, 2, 3]
    assert auto_layers(0) == [0]
    with pytest.raises(InputError):
        auto_layers(-1)


def test_labels_use_alias_names():
    audio = FeatureLayer(AUDIO_KEY, "tr6", 9)
    text = FeatureLayer(TEXT_KEY, "ctx200", 9)
    other = FeatureLayer("org--custom", "tr2", 0)
    assert Config(audio).label == "wavlm/tr6/layer9"
    assert Config(other).label == "org--custom/tr2/layer0"
    assert Config(text, audio, CONCAT).label == "gpt2/ctx200+wavlm/tr6/9x9"
    assert Config(text, audio, BANDED).label == "gpt2/ctx200+wavlm/tr6/9x9/banded"
    with pytest.raises(InputError, match="single"):
        Config(audio, method=BANDED)
    with pytest.raises(InputError, match="fusion method"):
        Config(text, audio, "sum")


def test_every_canonical_label_round_trips(grid_store):
    configs = build_configs(
        grid_store,
        models=[("gpt2", None), ("wavlm", None)],
        fusions=[(("gpt2", None), ("wavlm", ["tr3"]))],
        layers="all",
    )
    banded = [Config(c.a, c.b, BANDED) for c in configs if c.is_fusion]
    catalog = StoreCatalog(grid_store)
    for config in configs + banded:
        assert parse_config(config.label, catalog) == config


@pytest.mark.parametrize(
    ("typed", "label"),
    [
        ("wavlm/tr3/9", None),
        ("wavlm/tr3/3", "wavlm/tr3/layer3"),
        ("wavlm/tr2/layer0", "wavlm/tr2/layer0"),
        ("gpt2/4", "gpt2/ctx20/layer4"),
        (f"{AUDIO_KEY}/tr3/layer2", "wavlm/tr3/layer2"),
        ("gpt2+wavlm/tr3/4x3", "gpt2/ctx20+wavlm/tr3/4x3"),
        ("gpt2+wavlm/tr3/4x3/banded", "gpt2/ctx20+wavlm/tr3/4x3/banded"),
        ("gpt2/ctx20+wavlm/tr2/layer1xlayer2", "gpt2/ctx20+wavlm/tr2/1x2"),
    ],
)
def test_short_forms(grid_store, typed, label):
    if label is None:
        with pytest.raises(InputError, match=r"has layers 0\.\.4; no layer 9"):
            parse_config(typed, grid_store)
    else:
        assert parse_config(typed, grid_store).label == label


def test_ambiguous_or_unknown_names_list_choices(grid_store):
    with pytest.raises(InputError, match="wavlm has windows tr2, tr3"):
        parse_config("wavlm+gpt2/ctx20/1x1", grid_store)
    with pytest.raises(InputError, match=r"present: gpt2 \(ctx20\), wavlm \(tr2, tr3\)"):
        parse_config("hubert/tr3/1", grid_store)
    with pytest.raises(InputError, match="no feature set wavlm/tr6"):
        parse_config("wavlm/tr6/1", grid_store)
    with pytest.raises(InputError, match="cannot parse"):
        parse_config("wavlm", grid_store)


def test_typed_labels_match_the_configs_of_a_run():
    audio6, audio1 = FeatureLayer(AUDIO_KEY, "tr6", 9), FeatureLayer(AUDIO_KEY, "tr1", 9)
    text = FeatureLayer(TEXT_KEY, "ctx200", 4)
    configs = [
        Config(audio6),
        Config(text),
        Config(text, audio6, CONCAT),
        Config(text, audio6, BANDED),
    ]
    run = {c.label: c for c in configs}
    for typed, label in [
        ("wavlm/tr6/layer9", "wavlm/tr6/layer9"),
        ("wavlm/9", "wavlm/tr6/layer9"),  # the only window of wavlm in the run
        (f"{AUDIO_KEY}/tr6/9", "wavlm/tr6/layer9"),
        ("gpt2/4", "gpt2/ctx200/layer4"),
        ("gpt2+wavlm/tr6/4x9", "gpt2/ctx200+wavlm/tr6/4x9"),
        ("gpt2+wavlm/4x9/banded", "gpt2/ctx200+wavlm/tr6/4x9/banded"),
    ]:
        assert match_label(typed, run) == label, typed
    for absent in ("wavlm/tr1/9", "wavlm/8", "gpt2/ctx200/layer9", "wavlm+gpt2/9x4", "hubert/9"):
        assert match_label(absent, run) is None, absent
    run[Config(audio1).label] = Config(audio1)
    with pytest.raises(InputError, match="'wavlm/9' is ambiguous: wavlm/tr6/layer9, wavlm/tr1"):
        match_label("wavlm/9", run)
    with pytest.raises(InputError, match="cannot parse"):
        match_label("wavlm", run)


def test_select_layers(grid_store):
    info = StoreCatalog(grid_store).info(TEXT_KEY, "ctx20")
    assert select_layers("auto", info) == [1, 2, 4, 5, 6]
    assert select_layers("all", info) == list(range(7))
    assert select_layers([4, 1, 4], info) == [4, 1]
    with pytest.raises(InputError, match=r"features/gpt2/ctx20 has layers 0\.\.6; no layer 7, 12"):
        select_layers([1, 7, 12], info)


def test_parsers():
    assert parse_layers("auto") == "auto" and parse_layers("ALL") == "all"
    assert parse_layers("1, 4,6") == [1, 4, 6]
    with pytest.raises(InputError, match="`layers`"):
        parse_layers("1,x")
    assert parse_windows("tr1,2,3,6") == ["tr1", "tr2", "tr3", "tr6"]
    assert parse_windows("ctx200,tr1,2") == ["ctx200", "tr1", "tr2"]
    with pytest.raises(InputError, match="ctxN or trN"):
        parse_windows("6")
    assert parse_model_request("wavlm:tr1,6") == ("wavlm", ["tr1", "tr6"], None)
    assert parse_model_request("gpt2") == ("gpt2", None, None)
    assert parse_model_request("gpt2@4,9").layers == [4, 9]
    assert parse_model_request("wavlm:tr6@all") == ("wavlm", ["tr6"], "all")
    assert parse_fusion_request("gpt2:ctx200+wavlm") == (
        ("gpt2", ["ctx200"], None),
        ("wavlm", None, None),
    )
    assert parse_fusion_request("f:ctx32@1,4+spectral:tr1@0") == (
        ("f", ["ctx32"], [1, 4]),
        ("spectral", ["tr1"], [0]),
    )
    with pytest.raises(InputError, match="A\\+B"):
        parse_fusion_request("gpt2")
    with pytest.raises(InputError, match="'gpt2@x': the layers after @ 'x': expected auto, all"):
        parse_model_request("gpt2@x")


def test_build_configs_windows_by_kind(grid_store):
    configs = build_configs(
        grid_store, models=[("gpt2", None), ("wavlm", None)], windows=["ctx20", "tr3"]
    )
    assert [c.label for c in configs] == [
        *(f"gpt2/ctx20/layer{n}" for n in (1, 2, 4, 5, 6)),
        *(f"wavlm/tr3/layer{n}" for n in (1, 2, 3, 4)),
    ]
    # no window of the model's kind requested: every stored window
    configs = build_configs(grid_store, models=[("wavlm", None)], windows=["ctx20"], layers=[3])
    assert [c.label for c in configs] == ["wavlm/tr2/layer3", "wavlm/tr3/layer3"]


def test_a_requested_window_is_never_swapped_for_another(empty_store, feature_attrs):
    # an audio set stored under a text window (imports before 0.2 allowed it): asking
    # for tr1 must not evaluate ctx200 instead
    hidden = np.random.default_rng(0).standard_normal((2, 37, 3)).astype("f4")
    ds = feature_dataset(hidden, attrs={**feature_attrs, "ctx_words": 200})
    fs.write_group(empty_store, "features/odd/ctx200", ds)
    (problem,) = fs.validate(empty_store)
    assert "'audio' takes trN windows, not 'ctx200'" in str(problem)
    with pytest.raises(InputError, match=r"no feature set odd/tr1 .*present: odd \(ctx200\)"):
        build_configs(empty_store, models=[("odd", None)], windows=["tr1"])
    configs = build_configs(empty_store, models=[("odd", None)], windows=["ctx200"])
    assert {c.a.window for c in configs} == {"ctx200"}


def test_fusion_every_layer_pair_at_each_window(grid_store):
    configs = build_configs(
        grid_store, fusions=[(("gpt2", None), ("wavlm", None))], windows=["tr2", "tr3"]
    )
    pairs = {(c.a.window, c.b.window, c.a.layer, c.b.layer) for c in configs}
    expected = {
        ("ctx20", w, la, lb)
        for w in ("tr2", "tr3")
        for la in (1, 2, 4, 5, 6)
        for lb in (1, 2, 3, 4)
    }
    assert pairs == expected and len(configs) == len(expected)
    assert all(c.method == CONCAT for c in configs)
    # same-kind sides pair equal windows only
    same = build_configs(
        grid_store, fusions=[(("wavlm", None), ("wavlm", None))], layers=[1, 3], method=BANDED
    )
    assert [c.label for c in same] == [
        "wavlm/tr2+wavlm/tr2/1x3/banded",
        "wavlm/tr3+wavlm/tr3/1x3/banded",
    ]


def test_a_set_fused_with_itself_takes_each_pair_of_different_layers_once(grid_store):
    configs = build_configs(
        grid_store, fusions=[(("gpt2", None), ("gpt2", None))], layers=[6, 1, 4]
    )
    assert [c.label for c in configs] == [
        "gpt2/ctx20+gpt2/ctx20/1x6",
        "gpt2/ctx20+gpt2/ctx20/4x6",
        "gpt2/ctx20+gpt2/ctx20/1x4",
    ]
    assert self_fusion_notices(configs) == [
        "fusion of gpt2/ctx20 with itself: only its 3 pair(s) of different layers are "
        "evaluated (AxB with A < B; AxA adds nothing and BxA repeats AxB)"
    ]
    with pytest.raises(InputError, match=r"fuses gpt2/ctx20 with itself, .* selected: 4; give"):
        build_configs(grid_store, fusions=[(("gpt2", None), ("gpt2", None))], layers=[4])
    with pytest.raises(InputError, match="fusion of gpt2/ctx20 layer 4 with itself"):
        parse_config("gpt2/ctx20+gpt2/ctx20/4x4", grid_store)
    # two different sets: every pair, 3x3 and 4x3 included
    mixed = build_configs(grid_store, fusions=[(("gpt2", None), ("wavlm", ["tr3"]))], layers=[3, 4])
    assert len(mixed) == 4 and not self_fusion_notices(mixed)


def test_each_side_of_a_fusion_may_select_its_own_layers(grid_store):
    # wavlm has layers 0..4: one --layers 6 for both sides fails, per-side lists do not
    with pytest.raises(InputError, match="no layer 6"):
        build_configs(grid_store, fusions=[(("gpt2", None), ("wavlm", ["tr3"]))], layers=[6])
    request = parse_fusion_request("gpt2@6+wavlm:tr3@1,2")
    configs = build_configs(grid_store, fusions=[request], layers=[5])
    assert [c.label for c in configs] == ["gpt2/ctx20+wavlm/tr3/6x1", "gpt2/ctx20+wavlm/tr3/6x2"]
    # a side without its own layers takes --layers; models may select theirs too
    configs = build_configs(
        grid_store,
        models=[parse_model_request("wavlm:tr3@0")],
        fusions=[parse_fusion_request("gpt2+wavlm:tr3@4")],
        layers=[1, 2],
    )
    assert [c.label for c in configs] == [
        "wavlm/tr3/layer0",
        "gpt2/ctx20+wavlm/tr3/1x4",
        "gpt2/ctx20+wavlm/tr3/2x4",
    ]
    # a set fused with itself at two layers given per side, in either order
    for text in ("gpt2@4+gpt2@2", "gpt2@2+gpt2@4"):
        configs = build_configs(grid_store, fusions=[parse_fusion_request(text)])
        assert [c.label for c in configs] == ["gpt2/ctx20+gpt2/ctx20/2x4"]


def test_build_configs_errors(grid_store):
    with pytest.raises(InputError, match="nothing to evaluate"):
        build_configs(grid_store)
    with pytest.raises(InputError, match="method="):
        build_configs(grid_store, models=[("gpt2", None)], method="sum")
    with pytest.raises(InputError, match="no common window"):
        build_configs(grid_store, fusions=[(("wavlm", ["tr2"]), ("wavlm", ["tr3"]))])
