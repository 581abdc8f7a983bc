"""Parity of convbert_export.tokenization with transformers' ConvBertTokenizer (the oracle).

transformers is imported here only (test oracle), never by the package.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from convbert_export.errors import InvalidInputError
from convbert_export.tokenization import Encoding, Tokenizer, demo_vocab_dir, validation_texts

transformers = pytest.importorskip("transformers")
from transformers import AutoTokenizer, ConvBertTokenizer  # noqa: E402

if int(transformers.__version__.split(".")[0]) < 5:  # 4.x: ConvBertTokenizer is the slow Python class
    from transformers import ConvBertTokenizerFast as ConvBertTokenizer  # noqa: E402,F811  the tokenizers-backed one

ROOT = Path(__file__).resolve().parent.parent

LONG_WORD = "pneumono" + "x" * 120  # over max_input_chars_per_word=100 -> [UNK]
TEXTS = [
    "The museum opens at nine.",
    "Zoë and José met at the naïve art exhibition in São Paulo; Ångström, résumé, Crème Brûlée.",
    "Tokyo (東京) and Beijing (北京) 你好世界 are large cities.",
    "The meeting was great 👍🏽 and 🎉 everyone agreed!",
    "control\x00chars\x07and\x1b tabs\tnew\nlines\r\nzero\u200bwidth\ufeffbom",
    f"a very long word {LONG_WORD} ends here",
    "",
    "   ",
    "\t\n \u3000",
    "The capital of France is [MASK].",
    "UPPER lower MiXeD Hello WORLD",
    "e\u0301 combining and precomposed \u00e9, Ärger, ÆSIR, ß",
    "مرحبا بالعالم and Привет мир",
    "$3.50 -> 21% (approx.) #tag @user e-mail: a@b.co",
    "don't can't it's we've they're",
]
SETTINGS = [  # (do_lower_case, strip_accents, tokenize_chinese_chars)
    (True, None, True),
    (False, None, True),
    (True, False, True),
    (False, True, False),
    (True, True, False),
]

SMALL_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "The", "a", "and", "is", "e", "é", "zo", "##ë", "##e", "jo", "##s", "##é", "met",
    "Zo", "Jo", "##se", "##ay", "##an", "to", "##ky", "##o", "tok", "東", "京", "你", "好",
    "un", "##aff", "##able", "hello", "Hello", "world", "World", ",", ".", "!", "(", ")", "[", "]",
    "con", "##trol", "char", "##s", "a", "##b", "##c", "x", "##x", "mask",
]  # fmt: skip


# --------------------------------------------------------------------------- helpers
def write_config(directory: Path, lower: bool, strip: bool | None, chinese: bool) -> None:
    config = {
        "tokenizer_class": "ConvBertTokenizer",
        "do_lower_case": lower,
        "strip_accents": strip,
        "tokenize_chinese_chars": chinese,
        "model_max_length": 512,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.fixture(scope="module")
def small_vocab(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("small") / "vocab.txt"
    # duplicates ("##s", "a") keep the last line, as transformers does
    path.write_text("".join(t + "\n" for t in SMALL_VOCAB), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pairs_by_setting(tmp_path_factory, small_vocab):
    """(ours, theirs) for each vocab x setting, both loaded from the same directory."""
    result = {}
    for vocab_name, vocab in (("demo", demo_vocab_dir() / "vocab.txt"), ("small", small_vocab)):
        for setting in SETTINGS:
            directory = tmp_path_factory.mktemp(f"{vocab_name}")
            (directory / "vocab.txt").write_bytes(vocab.read_bytes())
            write_config(directory, *setting)
            result[vocab_name, setting] = (
                Tokenizer.from_pretrained(directory),
                ConvBertTokenizer.from_pretrained(str(directory)),
            )
    return result


@pytest.fixture(scope="module")
def demo_pair():
    return Tokenizer.from_pretrained(demo_vocab_dir()), ConvBertTokenizer.from_pretrained(str(demo_vocab_dir()))


def assert_same(ours: dict[str, np.ndarray], theirs, keys=("input_ids", "token_type_ids", "attention_mask")):
    for key in keys:
        expected = np.asarray(theirs[key], dtype=np.int64)
        assert ours[key].dtype == np.int64, key
        assert ours[key].shape == expected.shape, (key, ours[key].shape, expected.shape)
        np.testing.assert_array_equal(ours[key], expected, err_msg=key)


# --------------------------------------------------------------------------- parity
@pytest.mark.parametrize("vocab_name", ["demo", "small"])
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: "lower={}-strip={}-cjk={}".format(*s))
def test_batch_parity_with_offsets(pairs_by_setting, vocab_name, setting):
    ours, theirs = pairs_by_setting[vocab_name, setting]
    got = ours(TEXTS, return_offsets_mapping=True, return_special_tokens_mask=True)
    want = theirs(TEXTS, padding=True, return_offsets_mapping=True, return_special_tokens_mask=True)
    assert_same(got, want, ("input_ids", "token_type_ids", "attention_mask", "offset_mapping", "special_tokens_mask"))
    # unpadded encodings: word ids and sequence ids as transformers' (None -> -1)
    for index, enc in enumerate(ours.encode_batch(TEXTS)):
        n = len(enc)  # theirs is padded
        assert enc.word_ids.tolist() == [-1 if w is None else w for w in want.word_ids(index)][:n]
        assert enc.sequence_ids.tolist() == [-1 if s is None else s for s in want.sequence_ids(index)][:n]
        assert list(enc.tokens) == want.tokens(index)[: len(enc)]


def test_settings_change_tokens(pairs_by_setting):
    """Guard that the grid exercises the options: they give different ids on these texts."""
    outputs = {
        tuple(pairs_by_setting["small", s][0](TEXTS)["input_ids"].ravel().tolist()) for s in SETTINGS
    }
    assert len(outputs) == len(SETTINGS)


def test_from_vocab_equals_from_pretrained(pairs_by_setting, small_vocab):
    for setting in SETTINGS:
        lower, strip, chinese = setting
        ours = Tokenizer.from_vocab(small_vocab, lowercase=lower, strip_accents=strip, tokenize_chinese_chars=chinese)
        theirs = pairs_by_setting["small", setting][1]
        assert_same(ours(TEXTS), theirs(TEXTS, padding=True))


def test_python_slow_tokenizer_parity(small_vocab):
    if int(transformers.__version__.split(".")[0]) < 5:  # 4.x: BertTokenizer is the Python one
        slow = transformers.BertTokenizer(str(small_vocab))
    else:
        legacy = pytest.importorskip("transformers.models.bert.tokenization_bert_legacy")
        slow = legacy.BertTokenizerLegacy(str(small_vocab))
    ours = Tokenizer.from_vocab(small_vocab)
    # The legacy python tokenizer treats [MASK] etc. the same; compare every text.
    for text in TEXTS:
        got = ours.encode_batch(text)[0].ids.tolist()
        assert got == slow(text)["input_ids"], text


def test_empty_and_whitespace_encode_to_cls_sep(demo_pair):
    ours, theirs = demo_pair
    for text in ["", " ", "\t\n", "\u3000\u00a0", "\x00"]:
        ids = ours.encode_batch(text)[0].ids.tolist()
        assert ids == [ours.cls_token_id, ours.sep_token_id]
        assert ids == theirs(text)["input_ids"]
    # an empty second text still makes a pair (batched transformers agrees)
    got = ours(["a", ""], ["", ""])
    assert_same(got, theirs(["a", ""], ["", ""], padding=True))


def test_very_long_word_is_unk(demo_pair):
    ours, _ = demo_pair
    ids = ours.encode_batch(LONG_WORD)[0].ids.tolist()
    assert ids == [ours.cls_token_id, ours.unk_token_id, ours.sep_token_id]


def test_mask_token_is_matched_in_text(demo_pair):
    ours, theirs = demo_pair
    ids = ours.encode_batch("The capital of France is [MASK].")[0].ids.tolist()
    assert ids.count(ours.mask_token_id) == 1
    assert ids == theirs("The capital of France is [MASK].")["input_ids"]


@pytest.mark.parametrize("truncation", [True, "longest_first", "only_first", "only_second"])
@pytest.mark.parametrize("max_length", [9, 16, 40])
def test_pair_truncation(demo_pair, truncation, max_length):
    ours, theirs = demo_pair
    first = ["The museum opens at nine and closes at six every day.", "Short one.", "a b"]
    second = ["Paris is the capital of France, and Berlin is the capital of Germany.", "x", "c d e f g h i j k"]
    try:
        want = theirs(first, second, truncation=truncation, max_length=max_length, padding=True,
                      return_offsets_mapping=True)
    except Exception as exc:  # transformers refuses; we must refuse with our error type
        with pytest.raises(InvalidInputError):
            ours(first, second, truncation=truncation, max_length=max_length)
        assert "truncat" in str(exc).lower() or "sequence" in str(exc).lower()
        return
    got = ours(first, second, truncation=truncation, max_length=max_length, return_offsets_mapping=True)
    assert_same(got, want, ("input_ids", "token_type_ids", "attention_mask", "offset_mapping"))


@pytest.mark.parametrize("stride", [0, 8, 32])
def test_qa_stride_windows(demo_pair, stride):
    ours, theirs = demo_pair
    qa = [r for r in validation_texts() if "question" in r]
    questions = [r["question"] for r in qa]
    contexts = [r["context"] for r in qa]
    kwargs = dict(truncation="only_second", max_length=48, stride=stride, return_overflowing_tokens=True,
                  return_offsets_mapping=True)
    got = ours(questions, contexts, **kwargs)
    want = theirs(questions, contexts, padding=True, **kwargs)
    assert_same(got, want, ("input_ids", "token_type_ids", "attention_mask", "offset_mapping",
                            "overflow_to_sample_mapping"))
    assert len(set(got["overflow_to_sample_mapping"].tolist())) == len(qa)
    assert got["input_ids"].shape[0] > len(qa)  # the long contexts really overflow
    encodings = ours.encode_batch(questions, contexts, truncation="only_second", max_length=48, stride=stride,
                                  return_overflowing_tokens=True)
    for index, enc in enumerate(encodings):
        n = len(enc)  # theirs is padded
        assert enc.sequence_ids.tolist() == [-1 if s is None else s for s in want.sequence_ids(index)][:n]
        assert enc.word_ids.tolist() == [-1 if w is None else w for w in want.word_ids(index)][:n]
        assert enc.overflow_to_sample == want["overflow_to_sample_mapping"][index]


def test_single_text_overflow_windows(demo_pair):
    ours, theirs = demo_pair
    text = " ".join(r["text"] for r in validation_texts() if "text" in r and "text_pair" not in r)
    got = ours(text, truncation=True, max_length=64, stride=16, return_overflowing_tokens=True)
    want = theirs(text, truncation=True, max_length=64, stride=16, return_overflowing_tokens=True, padding=True)
    assert_same(got, want, ("input_ids", "token_type_ids", "attention_mask", "overflow_to_sample_mapping"))
    assert got["input_ids"].shape[0] > 3


def test_very_long_text_truncates_to_model_max_length(demo_pair):
    ours, theirs = demo_pair
    text = "word " * 20000 + "ending"
    got = ours(text, truncation=True)
    assert got["input_ids"].shape == (1, 512)
    assert_same(got, theirs(text, truncation=True, max_length=512, return_tensors="np"))
    with pytest.warns(UserWarning, match="model_max_length"):
        untruncated = ours.encode_batch(text)
    assert len(untruncated[0]) == 20003


def test_max_length_alone_truncates_and_padding_max_length(demo_pair):
    ours, theirs = demo_pair
    texts = ["The museum opens at nine and closes at six.", "Hi"]
    got = ours(texts, max_length=6)  # max_length alone truncates, as transformers' default call
    assert got["input_ids"].shape == (2, 6)
    assert_same(got, theirs(texts, max_length=6, truncation=True, padding=True))
    with pytest.warns(UserWarning, match="max_length"):  # transformers: padding=True ignores max_length
        want = theirs(texts, max_length=6, padding=True)
    assert_same(ours(texts, max_length=6, padding=True), want)
    got = ours(texts, padding="max_length", max_length=32)
    assert_same(got, theirs(texts, padding="max_length", max_length=32))
    got = ours(texts, pad_to_multiple_of=8)
    assert got["input_ids"].shape[1] % 8 == 0
    assert_same(got, theirs(texts, padding=True, pad_to_multiple_of=8))
    with pytest.raises(InvalidInputError, match="padding='longest'"):
        ours(texts, padding=False)
    with pytest.raises(InvalidInputError, match="max_length=4"):
        ours(texts, padding="max_length", max_length=4, truncation=False)


def test_add_special_tokens_false(demo_pair):
    ours, theirs = demo_pair
    assert_same(ours(TEXTS, add_special_tokens=False), theirs(TEXTS, add_special_tokens=False, padding=True))


def test_validation_texts_parity(demo_pair):
    ours, theirs = demo_pair
    rows = validation_texts()
    kinds = {tuple(sorted(r)) for r in rows}
    assert {("text",), ("text", "text_pair"), ("context", "question"), ("choices", "prompt")} <= kinds
    singles = [r["text"] for r in rows if set(r) == {"text"}]
    assert sum("[MASK]" in t for t in singles) >= 3
    lengths = [len(e) for e in ours.encode_batch(singles)]
    assert min(lengths) <= 10 and max(lengths) >= 60
    assert_same(ours(singles), theirs(singles, padding=True))
    pairs = [r for r in rows if "text_pair" in r]
    assert_same(ours([r["text"] for r in pairs], [r["text_pair"] for r in pairs]),
                theirs([r["text"] for r in pairs], [r["text_pair"] for r in pairs], padding=True))
    for row in (r for r in rows if "choices" in r):
        prompts = [row["prompt"]] * len(row["choices"])
        assert_same(ours(prompts, row["choices"]), theirs(prompts, row["choices"], padding=True))


# --------------------------------------------------------------------------- decode, ids
def test_decode_and_conversions(demo_pair):
    ours, theirs = demo_pair
    ids = ours(TEXTS)["input_ids"]
    for row in ids:
        for skip in (False, True):
            for clean in (None, True, False):
                assert ours.decode(row, skip_special_tokens=skip, clean_up_tokenization_spaces=clean) == theirs.decode(
                    row.tolist(), skip_special_tokens=skip, clean_up_tokenization_spaces=clean)
        assert ours.convert_ids_to_tokens(row) == theirs.convert_ids_to_tokens(row.tolist())
    assert ours.convert_tokens_to_ids(["the", "notatoken!!", "[MASK]"]) == theirs.convert_tokens_to_ids(
        ["the", "notatoken!!", "[MASK]"])
    assert ours.convert_ids_to_tokens(4) == "[MASK]"
    with pytest.raises(InvalidInputError, match="out of range"):
        ours.convert_ids_to_tokens([1, 99999])


def test_properties(demo_pair):
    ours, theirs = demo_pair
    assert ours.vocab_size == len(theirs) == 8192
    for name in ("pad_token_id", "cls_token_id", "sep_token_id", "mask_token_id", "unk_token_id",
                 "mask_token", "pad_token", "model_max_length", "do_lower_case"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert (ours.pad_token_id, ours.unk_token_id, ours.cls_token_id, ours.sep_token_id, ours.mask_token_id) == (
        0, 1, 2, 3, 4)


# --------------------------------------------------------------------------- round trips
def test_our_save_loads_in_transformers(tmp_path, pairs_by_setting):
    for setting in SETTINGS:
        ours = pairs_by_setting["small", setting][0]
        out = tmp_path / f"ours-{'-'.join(map(str, setting))}"
        written = ours.save_pretrained(out)
        assert sorted(Path(p).name for p in written) == sorted(
            ["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"])
        for loader in (AutoTokenizer.from_pretrained, ConvBertTokenizer.from_pretrained):
            theirs = loader(str(out))
            assert_same(ours(TEXTS), theirs(TEXTS, padding=True))
        # vocab.txt alone (no tokenizer.json) also round-trips, in both libraries
        (out / "tokenizer.json").unlink()
        assert_same(Tokenizer.from_pretrained(out)(TEXTS), ConvBertTokenizer.from_pretrained(str(out))(TEXTS, padding=True))
        assert_same(Tokenizer.from_pretrained(out)(TEXTS), ours(TEXTS))


def test_transformers_save_loads_in_ours(tmp_path, pairs_by_setting):
    for setting in SETTINGS:
        ours, theirs = pairs_by_setting["demo", setting]
        out = tmp_path / f"theirs-{'-'.join(map(str, setting))}"
        theirs.save_pretrained(str(out))
        assert (out / "tokenizer.json").is_file()
        reloaded = Tokenizer.from_pretrained(out)
        assert (reloaded.do_lower_case, reloaded.strip_accents, reloaded.tokenize_chinese_chars) == setting
        assert_same(reloaded(TEXTS, return_offsets_mapping=True),
                    theirs(TEXTS, padding=True, return_offsets_mapping=True),
                    ("input_ids", "token_type_ids", "attention_mask", "offset_mapping"))


def test_tokenizer_json_normalizer_wins_over_config(tmp_path, demo_pair):
    ours, _ = demo_pair
    ours.save_pretrained(tmp_path)
    write_config(tmp_path, False, None, True)  # tokenizer.json says lowercase; the config says no
    reloaded = Tokenizer.from_pretrained(tmp_path)
    assert reloaded.do_lower_case is True  # transformers 5 also keeps tokenizer.json's normalizer
    if int(transformers.__version__.split(".")[0]) < 5:
        # transformers 4's fast tokenizer rebuilds the normalizer from the config instead; we
        # follow transformers 5 here, so 4.x is no oracle for this one case
        pytest.skip("transformers 4 lets tokenizer_config.json's do_lower_case override tokenizer.json; "
                    "we keep tokenizer.json's normalizer, as transformers 5 does")
    assert_same(reloaded(TEXTS), ConvBertTokenizer.from_pretrained(str(tmp_path))(TEXTS, padding=True))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "bad, where",
    [(None, "text must be"), (5, "text must be"), (["ok", None], r"text\[1\]"), (["a", "b", 3.5], r"text\[2\]"),
     ([["pre", "split"]], r"text\[0\]")],
)
def test_invalid_inputs(demo_pair, bad, where):
    ours, _ = demo_pair
    with pytest.raises(InvalidInputError, match=where):
        ours(bad)


def test_lone_surrogate_policy(demo_pair):
    ours, theirs = demo_pair
    with pytest.raises(TypeError):  # what transformers does: an unexplained TypeError
        theirs("bad \ud800 text")
    with pytest.raises(InvalidInputError, match=r"text\[1\].*U\+DC00 at character 2"):
        ours(["fine", "ab\udc00"])
    with pytest.raises(InvalidInputError, match=r"text_pair.*U\+D83D"):
        ours("q", "\ud83d")
    # a proper surrogate *pair* decoded by Python is one character and is fine
    assert ours("smile \U0001F600")["input_ids"].shape[0] == 1


def test_pair_count_mismatch_and_bad_options(demo_pair):
    ours, _ = demo_pair
    with pytest.raises(InvalidInputError, match="expected 2"):
        ours(["a", "b"], ["c"])
    with pytest.raises(InvalidInputError, match="truncation"):
        ours("a", truncation="sideways")
    with pytest.raises(InvalidInputError, match="padding"):
        ours("a", padding="shortest")
    with pytest.raises(InvalidInputError, match="stride"):
        ours("a", stride=-1)
    with pytest.raises(InvalidInputError, match="max_length"):
        ours("a", "b", truncation="only_second", max_length=8, stride=10)


def test_missing_files_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="tokenizer.json or vocab.txt") as info:
        Tokenizer.from_pretrained(tmp_path)
    assert "config.json" in str(info.value)
    with pytest.raises(InvalidInputError, match="not found"):
        Tokenizer.from_pretrained(tmp_path / "nope")
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": "yes"}')
    with pytest.raises(InvalidInputError, match="do_lower_case"):
        Tokenizer.from_pretrained(tmp_path)


def test_encode_batch_returns_unpadded_encodings(demo_pair):
    ours, _ = demo_pair
    encodings = ours.encode_batch(["one", "two words here"])
    assert [type(e) for e in encodings] == [Encoding, Encoding]
    assert [len(e) for e in encodings] == [3, len(encodings[1].ids)]
    assert all(e.ids.dtype == np.int64 and e.offsets.shape == (len(e), 2) for e in encodings)


# --------------------------------------------------------------------------- demo vocab
def test_demo_vocab_files():
    directory = demo_vocab_dir()
    lines = (directory / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(set(lines)) == 8192
    assert lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    config = json.loads((directory / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is True and config["model_max_length"] == 512


def test_make_demo_vocab_is_deterministic_and_matches_committed_files():
    spec = importlib.util.spec_from_file_location("make_demo_vocab", ROOT / "tools" / "make_demo_vocab.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    docs = tool.training_text()
    tokens = tool.build_vocab(docs)
    assert len(tokens) == len(set(tokens)) == 8192
    if tool.corpus_sha256(docs) != tool.COMMITTED_CORPUS_SHA256:
        assert tokens == tool.build_vocab(docs)
        pytest.skip(f"training text differs on Python {sys.version.split()[0]}; committed files were made on 3.11.7")
    for name, text in tool.render(tokens).items():  # same text -> the committed files, byte for byte
        assert (demo_vocab_dir() / name).read_text(encoding="utf-8") == text, name
