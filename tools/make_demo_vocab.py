"""Make the demo WordPiece vocabulary in convbert_export/data/demo_vocab/.

How it was made (and how to make it again)::

    python tools/make_demo_vocab.py            # writes convbert_export/data/demo_vocab/
    python tools/make_demo_vocab.py --check    # rebuilds in memory, fails if the files differ

No downloads. The training text is, in this order:

1. ``pydoc_data.topics.topics`` (the Python language reference as plain text, shipped with
   CPython), topics sorted by name;
2. the docstrings of every top-level module file of the standard library directory
   (``sysconfig.get_paths()["stdlib"]/*.py``, sorted by name), read with ``ast`` (no imports,
   so no side effects): the module docstring, then each class and function docstring in
   source order;
3. ``convbert_export/data/texts/validation.jsonl`` (every string in it), so the demo texts are
   covered.

The tokens are chosen by word and piece frequency (see :func:`build_vocab`), not by
``tokenizers``' ``WordPieceTrainer``: in tokenizers 0.23 that trainer breaks count ties in hash
order, and three runs on this text gave three different vocabularies (even with
TOKENIZERS_PARALLELISM=false). The result is a valid WordPiece vocabulary (every character
seen twice has a start and a ``##`` form), lowercase, 8192 ids, with special tokens
``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4`` (the layout transformers' BertTokenizer uses for a
fresh vocabulary). ``[unused<i>]`` entries fill up to 8192 if the text runs short.

The committed files were made with CPython 3.11 and tokenizers 0.23; the run prints the sha256
of the training text and of vocab.txt. Another Python version changes the training text, and
so the vocabulary: compare the printed training-text hash before replacing committed files.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "convbert_export" / "data" / "demo_vocab"
TEXTS = ROOT / "convbert_export" / "data" / "texts" / "validation.jsonl"
VOCAB_SIZE = 8192
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
#: sha256 of the training text the committed files were made from (CPython 3.11.7).
COMMITTED_CORPUS_SHA256 = "6659510decd6f022a45f7e7f39111cc5874b75cca846332f4a3af06d3832c46b"


def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                found.append(doc)
    return found


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for k in sorted(value) for s in _strings(value[k])]
    return []


def training_text() -> list[str]:
    """The training corpus, as a deterministic list of documents (see the module docstring)."""
    from pydoc_data.topics import topics

    docs = [topics[name] for name in sorted(topics)]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py")):
        docs.extend(_docstrings(path))
    for line in TEXTS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            docs.extend(_strings(json.loads(line)))
    return docs


def build_vocab(docs: list[str]) -> list[str]:
    """Choose exactly VOCAB_SIZE WordPiece tokens from ``docs``, deterministically.

    Words come from BERT's normalizer (lowercase, accents stripped, CJK split) and
    pre-tokenizer, run through ``tokenizers``. Then, every tie broken by the token's text:

    1. the special tokens;
    2. the alphabet: characters seen at least twice (the 1000 most frequent), each as a word
       start ``c`` and as a continuation ``##c`` (so every word made of them can be encoded);
    3. whole words seen at least twice, most frequent first, up to 3/4 of the remaining ids;
    4. pieces of the words not chosen in 3, weighted by word count: word starts of 2 to 8
       characters and continuations ``##xy...`` of 2 to 8 characters, most frequent first,
       until VOCAB_SIZE ids are used.
    """
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None, handle_chinese_chars=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for doc in docs:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(doc)))

    def ranked(counter: Counter[str], minimum: int) -> list[str]:
        return [t for t, c in sorted(counter.items(), key=lambda item: (-item[1], item[0])) if c >= minimum]

    chars: Counter[str] = Counter()
    for word, count in words.items():
        for ch in word:
            chars[ch] += count
    alphabet = sorted(ranked(chars, 2)[:1000])
    tokens = list(SPECIAL_TOKENS) + alphabet + ["##" + ch for ch in alphabet]
    seen = set(tokens)
    budget = VOCAB_SIZE - len(tokens)
    whole = [w for w in ranked(words, 2) if len(w) > 1 and w not in seen][: budget * 3 // 4]
    tokens += whole
    seen.update(whole)
    chosen = set(whole)

    pieces: Counter[str] = Counter()
    for word, count in words.items():
        if word in chosen or len(word) < 3:
            continue
        for end in range(2, min(8, len(word) - 1) + 1):
            pieces[word[:end]] += count
        for start in range(1, len(word)):
            for end in range(start + 2, min(start + 8, len(word)) + 1):
                pieces["##" + word[start:end]] += count
    for piece in ranked(pieces, 2):
        if len(tokens) >= VOCAB_SIZE:
            break
        if piece not in seen:
            tokens.append(piece)
            seen.add(piece)
    filler = 0
    while len(tokens) < VOCAB_SIZE:
        tokens.append(f"[unused{filler}]")
        filler += 1
    return tokens


def corpus_sha256(docs: list[str]) -> str:
    """Hash of the training text (compare with COMMITTED_CORPUS_SHA256)."""
    return hashlib.sha256("\n\0".join(docs).encode("utf-8")).hexdigest()


def render(tokens: list[str]) -> dict[str, str]:
    """File name -> content of the demo vocabulary directory."""
    config = {
        "tokenizer_class": "ConvBertTokenizer",
        "do_lower_case": True,
        "strip_accents": None,
        "tokenize_chinese_chars": True,
        "model_max_length": 512,
        "clean_up_tokenization_spaces": False,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    special = {k: config[k] for k in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")}
    return {
        "vocab.txt": "".join(t + "\n" for t in tokens),
        "tokenizer_config.json": json.dumps(config, indent=2) + "\n",
        "special_tokens_map.json": json.dumps(special, indent=2) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output directory (default: the package's demo_vocab)")
    parser.add_argument("--check", action="store_true", help="rebuild and compare with --out instead of writing")
    args = parser.parse_args(argv)

    docs = training_text()
    corpus_hash = corpus_sha256(docs)
    files = render(build_vocab(docs))
    vocab_hash = hashlib.sha256(files["vocab.txt"].encode("utf-8")).hexdigest()
    print(f"python {sys.version.split()[0]}; {len(docs)} documents, "
          f"{sum(map(len, docs))} characters, sha256 {corpus_hash}")
    print(f"vocab.txt: {VOCAB_SIZE} tokens, sha256 {vocab_hash}")
    if args.check:
        differ = [n for n, text in files.items() if not (args.out / n).is_file()
                  or (args.out / n).read_text(encoding="utf-8") != text]
        if differ:
            print(f"differs from {args.out}: {', '.join(differ)}")
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=args.out, delete=False, suffix=".tmp") as tmp:
            tmp.write(text)
        Path(tmp.name).replace(args.out / name)
    print(f"wrote {', '.join(sorted(files))} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
