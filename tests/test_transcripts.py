"""Sentence texts of a real corpus (`corpus.transcripts`): the prompt and folder forms, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from vc.config import AudioConfig, ConfigError, CorpusConfig, SplitConfig, load_params
from vc.corpus.build import build_corpus, read_manifest
from vc.corpus.transcripts import TranscriptError, read_transcripts
from vc.errors import InputError

ARCTIC_DATA = """\
( arctic_a0001 "Author of the danger trail, Philip Steels, etc." )
( arctic_a0002 "Not at this particular case, Tom, apologized Whittemore." )

"""


def test_festvox_prompts_apply_to_every_speaker(tmp_path: Path) -> None:
    path = tmp_path / "arctic.data"
    path.write_text(ARCTIC_DATA)
    transcripts = read_transcripts(path)
    assert transcripts.text("slt", "arctic_a0001") == "Author of the danger trail, Philip Steels, etc."
    assert transcripts.text("clb", "arctic_a0002").startswith("Not at this particular case")
    assert transcripts.text("slt", "arctic_b0001") == ""


def test_tab_separated_prompts(tmp_path: Path) -> None:
    path = tmp_path / "prompts.tsv"
    path.write_text("# id and text\nutt00\tThe old boat drifted.\nutt01\tA warm breeze.\n")
    assert read_transcripts(path).text("spkA", "utt01") == "A warm breeze."


def test_transcript_folder_per_speaker(tmp_path: Path) -> None:
    (tmp_path / "txt" / "p225").mkdir(parents=True)
    (tmp_path / "txt" / "p225" / "p225_001.txt").write_text("Please call Stella.\n")
    (tmp_path / "txt" / "p225" / "002.txt").write_text("Ask her to bring these things.\n")
    transcripts = read_transcripts(tmp_path / "txt")
    assert transcripts.text("p225", "001") == "Please call Stella."
    assert transcripts.text("p225", "002") == "Ask her to bring these things."
    assert transcripts.text("p226", "001") == ""


def test_missing_transcripts_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "etc" / "arctic.data"
    with pytest.raises(InputError, match=rf"corpus\.transcripts: transcripts file {missing} does not exist"):
        read_transcripts(missing)


def test_unparsable_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text(ARCTIC_DATA + "arctic_a0003 no tab and no parentheses\n")
    with pytest.raises(TranscriptError, match=r"prompts\.txt line 4"):
        read_transcripts(path)
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    with pytest.raises(TranscriptError, match="no transcript lines"):
        read_transcripts(tmp_path / "empty.txt")


def _config(root: Path, transcripts: str | None) -> CorpusConfig:
    return CorpusConfig(
        source="directory",
        root=str(root),
        transcripts=transcripts,
        split=SplitConfig(test_utterances=2, validation_utterances=0),
        min_train_utterances=2,
        workers=1,
    )


def test_corpus_stage_stores_the_texts_in_the_manifest(speaker_dirs_corpus: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.tsv"
    prompts.write_text("".join(f"utt{i:02d}\tSentence number {i}.\n" for i in range(7)))  # utt07: none
    out = tmp_path / "prepared"
    build_corpus(
        _config(speaker_dirs_corpus, "prompts.tsv"),  # relative to base_dir
        AudioConfig(),
        out,
        min_train_frames=64,
        frame_period_ms=5.0,
        base_dir=tmp_path,
    )
    manifest = read_manifest(out / "manifest.csv").set_index(["speaker", "utt_id"])
    assert manifest.loc[("spkB", "utt03"), "text"] == "Sentence number 3."
    assert manifest.loc[("spkA", "utt07"), "text"] == ""


def test_corpus_stage_stops_on_a_missing_transcripts_file(speaker_dirs_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    with pytest.raises(InputError, match=r"corpus\.transcripts: .*nope\.data does not exist"):
        build_corpus(
            _config(speaker_dirs_corpus, str(tmp_path / "nope.data")),
            AudioConfig(),
            out,
            min_train_frames=64,
            frame_period_ms=5.0,
        )
    assert not out.exists()  # nothing half-written


def test_transcripts_are_refused_for_the_embedded_corpus() -> None:
    with pytest.raises(ConfigError, match=r"corpus\.transcripts"):
        load_params({"corpus": {"transcripts": "prompts.tsv"}})
