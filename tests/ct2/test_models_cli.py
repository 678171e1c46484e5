"""``featstore models`` and ``featstore models import-ct2``."""

from __future__ import annotations

from typer.testing import CliRunner

from featstore.cli.main import app

runner = CliRunner()


def test_models_lists_every_alias(monkeypatch):
    from featstore.extract.registry import aliases

    monkeypatch.setenv("COLUMNS", "250")  # rich reads it: keep each row on one line
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for spec in aliases().values():
        assert spec.name in result.output
    row = next(line for line in result.output.splitlines() if "whisper-base" in line)
    assert "multimodal" in row and "openai/whisper-base" in row and " 7 " in row


def test_import_ct2_writes_a_loadable_model(make_ct2_dir, tmp_path):
    from transformers import WhisperForConditionalGeneration

    out = tmp_path / "hf"
    result = runner.invoke(
        app, ["models", "import-ct2", str(make_ct2_dir()), "--out", str(out)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "2 encoder / 3 decoder layers, d_model 24, 13 mel bins" in result.output
    assert WhisperForConditionalGeneration.from_pretrained(out).config.d_model == 24


def test_import_ct2_errors_are_one_line_with_exit_2(make_ct2_dir, tmp_path):
    source = make_ct2_dir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    result = runner.invoke(
        app, ["models", "import-ct2", str(source), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert "error:" in result.output and "--overwrite" in result.output
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x01\x02")
    result = runner.invoke(
        app, ["models", "import-ct2", str(garbage), "--out", str(tmp_path / "g")]
    )
    assert result.exit_code == 2 and "garbage.bin" in result.output
