"""Triton Python-backend model: the thin adapter over ``convbert_export.serving.triton_step.TextStep``.

``convbert-export triton`` copies this file into ``<name>_tokenize/1/`` and ``<name>_answer/1/``
next to the export's manifest, config and tokenizer files; the model's ``role`` parameter in
config.pbtxt picks the step. All logic (record parsing, tokenization, post-processing) lives in
the package and is tested there; the Triton image needs ``pip install convbert-export`` (no
torch or onnxruntime is imported by these steps).
"""

import json
import os

import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend

from convbert_export.serving.triton_step import TextStep


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        directory = os.path.join(args["model_repository"], args["model_version"])
        self.step = TextStep(directory, params["role"], max_rows=int(params.get("max_rows", 0)) or None,
                             max_length=int(params.get("max_length", 0)) or None)

    def execute(self, requests):
        responses = []
        for request in requests:  # one record per request; a bad one fails alone
            try:
                inputs = {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy()
                          for name in self.step.input_names}
                outputs = self.step(inputs)
            except Exception as exc:  # noqa: BLE001 - becomes this request's error response
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
                continue
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor(name, value) for name, value in outputs.items()]))
        return responses
