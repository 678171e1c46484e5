"""Text extraction over a store of stories: one model load, stories never mixed, resume."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import transformers
import zarr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.main import app
from featstore.errors import GroupExistsError, InputError
from featstore.extract import extract
from featstore.store import stories as st

from .conftest import STORY, write_stimulus_store

CTX = 8


def _add_story(collection, name: str, words: list[str], n_tr: int) -> None:
    path = st.story_path(collection, name)
    write_stimulus_store(path, words, n_tr=n_tr)
    zarr.open_group(path, mode="r+").attrs["story"] = name


@pytest.fixture
def two_stories(tmp_path):
    """A store of stories a (62 words, 23 TRs) and b (47 words, 19 TRs) and copies of each
    as one-story stores, for reference extractions."""
    collection = st.create_collection(tmp_path / "c.zarr", dataset="c", tr_seconds=1.5)
    _add_story(collection, "a", STORY, 23)
    _add_story(collection, "b", STORY[::-1][:47], 19)
    singles = {}
    for name in ("a", "b"):
        singles[name] = shutil.copytree(st.story_path(collection, name), tmp_path / f"{name}.zarr")
    return collection, singles


@pytest.fixture
def model_loads(monkeypatch):
    """Every ``from_pretrained`` of a model or tokenizer, by class."""
    calls: list[str] = []
    for auto in (transformers.AutoModel, transformers.AutoTokenizer):
        original = auto.from_pretrained

        def counting(*args, _original=original, _name=auto.__name__, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(auto, "from_pretrained", counting)
    return calls


def _features(store, group: str) -> dict[str, np.ndarray]:
    ds = fs.open_group(store, group)
    return {name: ds[name].values for name in ("hidden", "word_hidden", "context_words")}


def test_every_story_with_one_model_load_equals_one_story_extraction(
    two_stories, tiny_gpt2, model_loads
):
    collection, singles = two_stories
    written = extract(collection, tiny_gpt2, ctx=CTX, progress=False)
    assert model_loads == ["AutoTokenizer", "AutoModel"]  # once for both stories
    group = written[0].split("/", 2)[2]
    assert written == [f"stories/a/{group}", f"stories/b/{group}"]
    for name, single in singles.items():
        assert extract(single, tiny_gpt2, ctx=CTX) == [group]
        got = _features(st.story_store(collection, name), group)
        want = _features(single, group)
        for var in want:
            np.testing.assert_allclose(got[var], want[var], rtol=1e-6, atol=1e-6)
    # the first word of story b sees itself only, never the end of story a
    context = _features(st.story_store(collection, "b"), group)["context_words"]
    assert context[0] == 1 and context.max() == CTX
    hidden = fs.open_group(collection, written[1]).hidden
    assert hidden.sizes["tr"] == 19 and hidden["time"].values[-1] == 18 * 1.5


def test_resume_extracts_only_the_story_missing_its_group(two_stories, tiny_gpt2, model_loads):
    collection, _ = two_stories
    group = extract(collection, tiny_gpt2, ctx=CTX, story=["b"])[0].split("/", 2)[2]
    assert fs.is_complete(st.story_store(collection, "b"), group)
    assert not fs.group_exists(st.story_store(collection, "a"), group)
    assert extract(collection, tiny_gpt2, ctx=CTX) == [f"stories/a/{group}"]  # b skipped
    fs.delete_group(st.story_store(collection, "a"), group)
    before = _features(st.story_store(collection, "b"), group)
    assert extract(collection, tiny_gpt2, ctx=CTX) == [f"stories/a/{group}"]
    np.testing.assert_array_equal(
        _features(st.story_store(collection, "b"), group)["word_hidden"], before["word_hidden"]
    )
    with pytest.raises(GroupExistsError, match=r"every story asked for \(a, b\).*`overwrite`"):
        extract(collection, tiny_gpt2, ctx=CTX)
    with pytest.raises(InputError, match="no story 'zz'; its stories: a, b"):
        extract(collection, tiny_gpt2, ctx=CTX, story="zz")
    assert model_loads.count("AutoModel") == 3  # one load per run that had work


def test_cli_extracts_the_stories_asked_for(two_stories, tiny_gpt2):
    collection, _ = two_stories
    args = ["extract", "--model", tiny_gpt2, "--ctx", str(CTX), "-s", str(collection)]
    result = CliRunner().invoke(app, [*args, "--story", "b"])
    assert result.exit_code == 0, result.output
    assert "wrote stories/b/features/" in result.output and "stories/a" not in result.output
    # log and progress lines (off a terminal) name the story
    assert f"story b (1 of 1): extracting {tiny_gpt2}" in result.output
    assert f"extract tiny-gpt2/ctx{CTX} [b]: 0/" in result.output
    skipped = CliRunner().invoke(app, [*args, "-q"])
    assert f"story b: {tiny_gpt2} already extracted, skipped" in skipped.output
    result = CliRunner().invoke(app, [*args, "--story", "a,zz", "-q"])
    assert result.exit_code == 2 and "no story 'zz'" in result.output


def test_an_interrupted_story_resumes_its_staged_blocks(two_stories, tiny_gpt2, monkeypatch):
    from featstore.extract import text as text_module

    collection, singles = two_stories
    options = {"ctx": CTX, "block_words": 16, "threads": 1}
    real, calls = text_module.word_vectors, []

    def dies_on_third_block(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(text_module, "word_vectors", dies_on_third_block)
    with pytest.raises(KeyboardInterrupt):
        extract(collection, tiny_gpt2, **options)
    monkeypatch.undo()
    written = extract(collection, tiny_gpt2, **options)
    assert [g.split("/")[1] for g in written] == ["a", "b"]
    group = written[0].split("/", 2)[2]
    a = st.story_store(collection, "a")
    assert fs.group_attrs(a, group)["resumed_blocks"] == 2
    assert fs.group_attrs(st.story_store(collection, "b"), group)["resumed_blocks"] == 0
    extract(singles["a"], tiny_gpt2, **options)
    np.testing.assert_array_equal(
        _features(a, group)["word_hidden"], _features(singles["a"], group)["word_hidden"]
    )
