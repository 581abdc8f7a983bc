"""INT8 calibration data and the TensorRT calibrator (full TensorRT only).

The calibration file is JSON lines. Each line is one example:

* ``{"text": "...", "text_pair": "..."}`` - tokenized with the export directory's tokenizer
  (``convbert_export.tokenization``; not for multiple choice);
* ``{"input_ids": [...], "attention_mask": [...], "token_type_ids": [...]}`` - already
  tokenized; for multiple choice each is a list of ``num_choices`` lists. Missing
  ``attention_mask`` means all ones, missing ``token_type_ids`` all zeros.

TensorRT calibrates dynamic-shape networks at one shape, the calibration profile's opt shape,
so examples are truncated or right-padded to the opt sequence length and grouped into batches
of the opt batch size (a last partial batch is dropped).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..fileio import read_jsonl
from ..tasks import INPUT_NAMES
from .profiles import Profile


def _fit(row: list[int], length: int, fill: int) -> list[int]:
    row = list(row)[:length]
    return row + [fill] * (length - len(row))


def read_calibration_batches(path: Path, export_dir: Path, profile: Profile, *, pad_token_id: int = 0,
                             multiple_choice: bool = False) -> list[dict[str, np.ndarray]]:
    """Read the JSON-lines file into int64 batches of the profile's opt shape."""
    seq = profile.sequence.opt
    choices = profile.num_choices.opt if multiple_choice and profile.num_choices else None
    tokenizer = None
    examples: list[dict[str, np.ndarray]] = []
    for number, item in read_jsonl(path, 'an object with "text" or "input_ids"'):
        if not ({"text", "input_ids"} & set(item)):
            raise InvalidInputError(f"{path}:{number}: expected an object with \"text\" or \"input_ids\"")
        if "input_ids" in item:
            ids = item["input_ids"]
            rows = ids if multiple_choice else [ids]
            if multiple_choice and (not rows or not isinstance(rows[0], list)):
                raise InvalidInputError(
                    f"{path}:{number}: multiple-choice input_ids must be a list of num_choices lists"
                )
            if multiple_choice:
                mask = item.get("attention_mask") or [[1] * len(r) for r in rows]
                types = item.get("token_type_ids") or [[0] * len(r) for r in rows]
            else:
                mask = [item.get("attention_mask") or [1] * len(ids)]
                types = [item.get("token_type_ids") or [0] * len(ids)]
        else:
            if multiple_choice:
                raise InvalidInputError(
                    f"{path}:{number}: multiple-choice calibration needs tokenized \"input_ids\" "
                    "(a list of num_choices lists), not \"text\""
                )
            if tokenizer is None:
                tokenizer = _load_tokenizer(export_dir)
            pair = item.get("text_pair")
            encoding = tokenizer.encode_batch([item["text"]], [pair] if pair is not None else None,
                                              truncation=True, max_length=seq)[0]
            rows = [encoding.ids.tolist()]
            mask, types = [encoding.attention_mask.tolist()], [encoding.type_ids.tolist()]
        if choices is not None:
            rows, mask, types = ([*r[:choices]] + [r[-1]] * (choices - len(r)) for r in (rows, mask, types))
        ex = {
            "input_ids": np.array([_fit(r, seq, pad_token_id) for r in rows], dtype=np.int64),
            "attention_mask": np.array([_fit(r, seq, 0) for r in mask], dtype=np.int64),
            "token_type_ids": np.array([_fit(r, seq, 0) for r in types], dtype=np.int64),
        }
        if not multiple_choice:
            ex = {k: v[0] for k, v in ex.items()}
        examples.append(ex)
    batch = profile.batch.opt
    if len(examples) < batch:
        raise InvalidInputError(
            f"calibration file {str(path)!r} has {len(examples)} examples, expected at least one "
            f"batch of {batch} (the calibration profile's opt batch); add examples"
        )
    return [
        {name: np.stack([ex[name] for ex in examples[i:i + batch]]) for name in INPUT_NAMES}
        for i in range(0, len(examples) - batch + 1, batch)
    ]


def _load_tokenizer(export_dir: Path):
    from ..tokenization import Tokenizer

    return Tokenizer.from_pretrained(export_dir)


def make_calibrator(trt, batches: list[dict[str, np.ndarray]], cache_path: Path | None, cuda):
    """An ``IInt8EntropyCalibrator2`` feeding ``batches`` from device buffers (TensorRT 10.x)."""
    base = getattr(trt, "IInt8EntropyCalibrator2", None)
    if base is None:
        raise InvalidInputError(
            f"this TensorRT ({getattr(trt, '__version__', '?')}) has no INT8 calibrator (implicit "
            "quantization was removed); quantize the export explicitly (QDQ) instead of --int8"
        )

    class Calibrator(base):
        def __init__(self):
            base.__init__(self)
            self.batches = batches
            self.index = 0
            self.buffers = {name: cuda.buffer() for name in INPUT_NAMES}
            self.stream_handle, self.stream = cuda.stream()

        def get_batch_size(self):
            return int(batches[0]["input_ids"].shape[0])

        def get_batch(self, names, *args):
            if self.index >= len(self.batches):
                return None
            batch = self.batches[self.index]
            self.index += 1
            pointers = []
            for name in names:
                array = np.ascontiguousarray(batch[name])
                ptr = self.buffers[name].reserve(array.nbytes)
                cuda.upload(ptr, array, self.stream)
                pointers.append(ptr)
            cuda.synchronize(self.stream)
            return pointers

        def read_calibration_cache(self):
            if cache_path is not None and Path(cache_path).is_file():
                return Path(cache_path).read_bytes()
            return None

        def write_calibration_cache(self, cache):
            if cache_path is not None:
                from ..fileio import write_bytes_atomic

                write_bytes_atomic(cache_path, bytes(memoryview(cache)))  # never a half-written cache

        def release(self):
            for buffer in self.buffers.values():
                buffer.free()
            cuda.destroy_stream(self.stream)

    return Calibrator()
