// Shared by the ONNX Runtime custom-op library's translation units: the C++ API (initialised by
// RegisterCustomOps, hence ORT_API_MANUAL_INIT in every file), error and shape helpers, the
// parallel split over rows, and the functions that add each file's ops to the one domain.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT

namespace convbert_ort {

constexpr const char* kDomain = "com.convbert_export";

// The custom-op callbacks return raw OrtStatus pointers that ONNX Runtime takes ownership of
// (an Ort::Status would free its status on return): always hand them over with release().
inline OrtStatusPtr make_error(const std::string& message) {
  return Ort::Status(message.c_str(), ORT_INVALID_ARGUMENT).release();
}

inline std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

// OrtCustomOp::InferOutputShapeFn giving output 0 the type and shape of input 0, symbolic dimensions
// included. Set directly rather than through the C++ wrapper's ShapeInferContext::SetOutputShape,
// which in the API 21 headers writes a symbolic dimension as -2, which newer ONNX Runtime rejects
// (the shape was then silently lost).
inline OrtStatusPtr ORT_API_CALL output_like_input0(const OrtCustomOp* /*op*/, OrtShapeInferContext* ctx) {
  const OrtApi& api = Ort::GetApi();
  OrtTensorTypeAndShapeInfo* info = nullptr;  // owned by ctx
  if (OrtStatusPtr status = api.ShapeInferContext_GetInputTypeShape(ctx, 0, &info)) return status;
  return api.ShapeInferContext_SetOutputTypeShape(ctx, 0, info);
}

// Calls fn(row_begin, row_end) over [0, rows) in tasks of `rows_per_task` rows with the session's
// intra-op thread pool; fewer than two tasks run on the calling thread.
template <typename Fn>
void parallel_rows(const Ort::KernelContext& context, int64_t rows, int64_t rows_per_task, const Fn& fn) {
  rows_per_task = std::max<int64_t>(1, rows_per_task);
  const int64_t tasks = (rows + rows_per_task - 1) / rows_per_task;
  if (tasks < 2) {
    if (rows > 0) fn(int64_t{0}, rows);
    return;
  }
  struct Split {
    const Fn* fn;
    int64_t rows;
    int64_t rows_per_task;
  } split{&fn, rows, rows_per_task};
  auto run = [](void* data, size_t task) {
    const auto* s = static_cast<const Split*>(data);
    const int64_t begin = static_cast<int64_t>(task) * s->rows_per_task;
    (*s->fn)(begin, std::min(s->rows, begin + s->rows_per_task));
  };
  context.ParallelFor(run, static_cast<size_t>(tasks), 0, &split);
}

// Each file's ops, added to the library's one domain by RegisterCustomOps.
void add_cpu_fused_ops(Ort::CustomOpDomain& domain);  // DepthwiseConv, AddLayerNorm (cpu_fused_ops.cc)

}  // namespace convbert_ort
