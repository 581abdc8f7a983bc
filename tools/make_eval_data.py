"""Labeled evaluation sets for all six tasks, made from the packaged texts (data/texts).

    python tools/make_eval_data.py OUTPUT_DIR

writes OUTPUT_DIR/<task>.jsonl. The labels are made by stated rules, not by people, so they
measure whether a variant scores like the reference, not how good the model is:
  text-classification   LABEL_1 when the text (or pair) has more than 12 words, else LABEL_0;
  token-classification  words split on spaces with punctuation split off; a run of capitalised
                        words not starting the sentence is an entity: LOC after in/at/to/from/near,
                        else PER (B- then I-); everything else O;
  question-answering    the four packaged questions with hand-written answers (spans of their
                        contexts), plus each question against another question's context with
                        no answer (SQuAD 2.0's impossible answers);
  fill-mask             each text with its longest word that is one vocabulary token masked
                        (label: that word), plus the four packaged [MASK] texts with hand labels;
  multiple-choice       the four packaged prompts, whose first choice is the sensible one, in
                        every rotation of their choices (label: where the sensible one went);
  feature-extraction    every text (no labels: variants are scored by cosine to the reference).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convbert_export.tokenization import Tokenizer, demo_vocab_dir, validation_texts  # noqa: E402

ANSWERS = {"Where is the Eiffel Tower?": "Paris, France",
           "When did the first public railway open?": "1825",
           "What do bees collect from flowers?": "nectar and pollen",
           "Who wrote the novel?": "Jane Austen"}
MASKED = {"The capital of France is [MASK].": "paris", "She poured a cup of [MASK] and opened the newspaper.": "tea",
          "The cat sat on the [MASK] and watched the birds.": "mat",
          "He [MASK] the door quietly so he would not wake the baby.": "closed"}
PLACE_WORDS = {"in", "at", "to", "from", "near"}


def words_of(text: str) -> list[str]:
    return re.findall(r"\w+(?:['’]\w+)*|[^\w\s]", text)


def tags_of(words: list[str]) -> list[str]:
    tags, kind = [], None
    for i, word in enumerate(words):
        entity = i > 0 and word[:1].isupper() and word.isalpha()
        if not entity:
            tags.append("O")
            kind = None
        elif kind is not None:
            tags.append(f"I-{kind}")
        else:
            kind = "LOC" if words[i - 1].lower() in PLACE_WORDS else "PER"
            tags.append(f"B-{kind}")
    return tags


def main(output: str) -> None:
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    items = validation_texts()
    plain = [it for it in items if "text" in it and "[MASK]" not in it["text"]]
    tokenizer = Tokenizer.from_pretrained(demo_vocab_dir())
    sets: dict[str, list[dict]] = {task: [] for task in ("text-classification", "token-classification",
                                                         "question-answering", "fill-mask", "multiple-choice",
                                                         "feature-extraction")}
    for it in plain:
        n = len((it["text"] + " " + it.get("text_pair", "")).split())
        row = {"text": it["text"], "label": "LABEL_1" if n > 12 else "LABEL_0"}
        if "text_pair" in it:
            row["text_pair"] = it["text_pair"]
        sets["text-classification"].append(row)
        sets["feature-extraction"].append({"text": it["text"]})
        if "text_pair" not in it:
            words = words_of(it["text"])
            sets["token-classification"].append({"tokens": words, "ner_tags": tags_of(words)})
            candidates = [w for w in words if w.isalpha() and tokenizer.backend.token_to_id(w.lower()) is not None]
            if candidates:
                word = max(candidates, key=len)
                masked = re.sub(rf"\b{re.escape(word)}\b", "[MASK]", it["text"], count=1)
                sets["fill-mask"].append({"text": masked, "label": word.lower()})
    for text, word in MASKED.items():
        sets["fill-mask"].append({"text": text, "label": word})
    qa = [it for it in items if "question" in it]
    for i, it in enumerate(qa):
        answer = ANSWERS[it["question"]]
        start = it["context"].index(answer)
        sets["question-answering"].append({"question": it["question"], "context": it["context"],
                                           "answers": {"text": [answer], "answer_start": [start]}})
        other = qa[(i + 1) % len(qa)]["context"]
        sets["question-answering"].append({"question": it["question"], "context": other,
                                           "answers": {"text": [], "answer_start": []}})
    for it in items:
        if "choices" not in it:
            continue
        choices = it["choices"]
        for shift in range(len(choices)):
            rotated = choices[shift:] + choices[:shift]
            sets["multiple-choice"].append({"prompt": it["prompt"], "choices": rotated, "label": rotated.index(choices[0])})
    for task, rows in sets.items():
        path = out / f"{task}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path}: {len(rows)} examples")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "eval_data")
