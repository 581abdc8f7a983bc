"""Profile syntax, settings validation and how requests map onto profiles (pure Python)."""

from __future__ import annotations

import pytest

from convbert_export.engine import EngineSettings
from convbert_export.engine.profiles import (
    AxisRange,
    Chunk,
    Profile,
    check_profiles,
    default_profiles,
    parse_profile,
    plan_chunks,
)
from convbert_export.errors import InvalidInputError, UnknownNameError


def test_parse_profile_ranges_and_fixed_sizes():
    profile = parse_profile("1,8,32:1,128,512")
    assert profile == Profile(batch=AxisRange(1, 8, 32), sequence=AxisRange(1, 128, 512))
    assert profile.shapes() == ((1, 1), (8, 128), (32, 512))
    assert parse_profile(" 4 : 16,64,64 ").shapes() == ((4, 16), (4, 64), (4, 64))
    mc = parse_profile("1,2,4:2,4,5:8,16,32", multiple_choice=True)
    assert mc.shapes() == ((1, 2, 8), (2, 4, 16), (4, 5, 32))
    assert list(mc.axes) == ["batch", "num_choices", "sequence"]
    assert Profile.from_dict(mc.to_dict()) == mc
    assert str(mc) == "1,2,4:2,4,5:8,16,32"


@pytest.mark.parametrize("text,multiple_choice,message", [
    ("1,8,32", False, "expected 2 ':'-separated parts"),
    ("1,8,32:1,128,512", True, "expected 3 ':'-separated parts .* for multiple-choice"),
    ("1,8:1,128,512", False, "batch part '1,8' must be MIN,OPT,MAX"),
    ("1,8,x:1,2,3", False, "must be MIN,OPT,MAX or a single size"),
    ("8,1,32:1,2,3", False, "batch range min=8, opt=1, max=32 is invalid"),
    ("0:1", False, "expected 1 <= MIN <= OPT <= MAX"),
    ("1:1:4,2,8", True, "sequence range"),
])
def test_parse_profile_errors(text, multiple_choice, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_profile(text, multiple_choice=multiple_choice)


def test_default_profiles_follow_the_model():
    (small,) = default_profiles(64, multiple_choice=False)
    assert small.sequence == AxisRange(1, 64, 64) and small.num_choices is None
    (base,) = default_profiles(512, multiple_choice=True)
    assert base.sequence == AxisRange(1, 128, 512)
    assert base.num_choices == AxisRange(1, 4, 8)
    assert base.batch == AxisRange(1, 8, 32)


def test_check_profiles_against_task_and_model():
    plain = parse_profile("1:1,8,16")
    with pytest.raises(InvalidInputError, match="no num_choices range, but task 'multiple-choice'"):
        check_profiles([plain], multiple_choice=True, max_position_embeddings=64, task="multiple-choice")
    with pytest.raises(InvalidInputError, match="sequence max 16 exceeds the model's max_position_embeddings 8"):
        check_profiles([plain], multiple_choice=False, max_position_embeddings=8, task="fill-mask")
    with pytest.raises(InvalidInputError, match="at least one"):
        check_profiles([], multiple_choice=False, max_position_embeddings=8, task="fill-mask")
    assert check_profiles([plain], multiple_choice=False, max_position_embeddings=16, task="x") == (plain,)


def test_plan_chunks_whole_split_pad_and_reject():
    small = parse_profile("1,1,4:1,16,32")
    large = parse_profile("2,8,16:1,64,64")
    profiles = [small, large]
    # fits both: the smaller profile wins
    assert plan_chunks((3, 20), profiles) == [Chunk(0, 0, 3, 3)]
    # only the large profile's sequence range fits; batch 1 < its min 2: padded with a copy
    assert plan_chunks((1, 50), profiles) == [Chunk(1, 0, 1, 2)]
    # batch 40 fits no profile whole: split along batch on the profile taking most rows
    assert plan_chunks((40, 10), profiles) == [Chunk(1, 0, 16, 16), Chunk(1, 16, 32, 16), Chunk(1, 32, 40, 8)]
    # a last chunk below the minimum batch is padded
    assert plan_chunks((17, 50), profiles) == [Chunk(1, 0, 16, 16), Chunk(1, 16, 17, 2)]
    with pytest.raises(InvalidInputError, match=r"input shape \(2, 65\).*outside every optimization profile.*"
                                                r"profile 0: batch 1..4, sequence 1..32; profile 1"):
        plan_chunks((2, 65), profiles)
    mc = [parse_profile("1,2,4:2,4,4:1,8,16", multiple_choice=True)]
    assert plan_chunks((9, 3, 16), mc) == [Chunk(0, 0, 4, 4), Chunk(0, 4, 8, 4), Chunk(0, 8, 9, 1)]
    with pytest.raises(InvalidInputError, match="num_choices 2..4"):
        plan_chunks((1, 5, 8), mc)


def test_settings_refuse_what_a_backend_lacks(tmp_path):
    with pytest.raises(InvalidInputError, match="strongly typed and has no --fp16.*fp16 export"):
        EngineSettings(backend="tensorrt-rtx", fp16=True)
    calibration = tmp_path / "c.jsonl"
    calibration.write_text('{"text": "a"}\n')
    with pytest.raises(InvalidInputError, match="no --int8 builder flag"):
        EngineSettings(backend="tensorrt-rtx", int8=True, calibration=calibration)
    with pytest.raises(InvalidInputError, match="cannot load plugins"):
        EngineSettings(backend="tensorrt-rtx", plugin_library=tmp_path / "lib.so")
    with pytest.raises(InvalidInputError, match="--int8 needs calibration data"):
        EngineSettings(backend="tensorrt", int8=True)
    with pytest.raises(InvalidInputError, match="only used with --int8"):
        EngineSettings(backend="tensorrt", calibration=calibration)
    with pytest.raises(InvalidInputError, match="does not exist"):
        EngineSettings(backend="tensorrt", int8=True, calibration=tmp_path / "missing.jsonl")
    with pytest.raises(InvalidInputError, match="positive number of MB"):
        EngineSettings(workspace_mb=0)
    with pytest.raises(UnknownNameError, match="expected one of: tensorrt, tensorrt-rtx"):
        EngineSettings(backend="onnx")
    ok = EngineSettings(backend="tensorrt", fp16=True, int8=True, calibration=str(calibration))
    assert ok.calibration == calibration


def test_plugin_library_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVBERT_TRT_PLUGIN", str(tmp_path / "env.so"))
    assert EngineSettings().resolved_plugin_library() == tmp_path / "env.so"
    assert EngineSettings(plugin_library=tmp_path / "x.so").resolved_plugin_library() == tmp_path / "x.so"
    monkeypatch.delenv("CONVBERT_TRT_PLUGIN")
    assert EngineSettings().resolved_plugin_library() is None


def test_calibration_batches(tmp_path):
    """Text lines go through the export's tokenizer; tokenized lines are padded/truncated to the
    calibration profile's opt shape."""
    import json

    import numpy as np

    from convbert_export.engine.calibration import read_calibration_batches
    from convbert_export.tokenization import Tokenizer, demo_vocab_dir

    lines = [{"text": "hello world"}, {"text": "a b", "text_pair": "c"},
             {"input_ids": [2, 5, 6, 7, 8, 9, 10, 11, 12, 3]}, {"input_ids": [2, 3]}]
    path = tmp_path / "cal.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    batches = read_calibration_batches(path, demo_vocab_dir(), parse_profile("1,2,4:1,8,16"), pad_token_id=0)
    assert len(batches) == 2 and all(b["input_ids"].shape == (2, 8) for b in batches)
    expected = Tokenizer.from_pretrained(demo_vocab_dir()).encode_batch(["hello world"])[0].ids
    np.testing.assert_array_equal(batches[0]["input_ids"][0, :len(expected)], expected)
    assert batches[0]["attention_mask"][0].sum() == len(expected)
    np.testing.assert_array_equal(batches[1]["input_ids"][0], [2, 5, 6, 7, 8, 9, 10, 11])  # truncated
    np.testing.assert_array_equal(batches[1]["attention_mask"][1], [1, 1, 0, 0, 0, 0, 0, 0])
    assert batches[0]["token_type_ids"][1].max() == 1  # the pair's second segment
    with pytest.raises(InvalidInputError, match="at least one batch of 8"):
        read_calibration_batches(path, demo_vocab_dir(), parse_profile("1,8,8:8"))
    path.write_text('{"ids": [1]}\n')
    with pytest.raises(InvalidInputError, match=r"cal.jsonl:1: expected an object with \"text\" or \"input_ids\""):
        read_calibration_batches(path, demo_vocab_dir(), parse_profile("1:8"))
