// ONNX Runtime custom-op library: DynamicConv (domain com.convbert_export), CPU, float32 and float16;
// RegisterCustomOps also adds the ops of cpu_fused_ops.cc (DepthwiseConv, AddLayerNorm) to the same domain.
//
// Entry point RegisterCustomOps(OrtSessionOptions*, const OrtApiBase*), so Python loads it with
// SessionOptions.register_custom_ops_library(path). Built against the API version 21 headers
// (onnxruntime 1.21) and requesting at most that version, it loads in any newer onnxruntime.
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "dynamic_conv_kernel.h"
#include "op_library.h"

namespace {

using convbert_ort::kDomain;
using convbert_ort::make_error;
using convbert_ort::shape_string;

constexpr const char* kOpType = "DynamicConv";
// The newest OrtApi this library asks for: onnxruntime >= 1.21 provides it.
constexpr uint32_t kRequestedApiVersion = ORT_API_VERSION < 21 ? ORT_API_VERSION : 21;
// Multiply-adds per parallel task (rows of batch x sequence are grouped to reach it); a call with
// less than two tasks of work runs on the calling thread.
constexpr int64_t kMinWorkPerTask = 1 << 15;  // multiply-adds

template <typename T>
struct ParallelTask {
  const T* value;
  const T* logits;
  T* out;
  convbert::DynamicConvShape shape;
  int64_t rows_per_task;
};

template <typename T>
void run_task(void* user_data, size_t task) {
  const auto* t = static_cast<const ParallelTask<T>*>(user_data);
  const int64_t begin = static_cast<int64_t>(task) * t->rows_per_task;
  const int64_t end = std::min(t->shape.rows(), begin + t->rows_per_task);
  convbert::dynamic_conv_rows<T>(t->value, t->logits, t->out, t->shape, begin, end);
}

// T is the ONNX element type as seen by the C++ API, U the storage type the kernel header uses.
template <typename T, typename U>
struct DynamicConvKernel {
  int64_t kernel_size;
  int64_t num_heads;
  int64_t head_size;

  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) {
    try {
      Ort::KernelContext context(raw_context);
      Ort::ConstValue value = context.GetInput(0);
      Ort::ConstValue logits = context.GetInput(1);
      const std::vector<int64_t> value_shape = value.GetTensorTypeAndShapeInfo().GetShape();
      const std::vector<int64_t> logits_shape = logits.GetTensorTypeAndShapeInfo().GetShape();
      const int64_t channels = num_heads * head_size;
      if (value_shape.size() != 3 || value_shape[2] != channels) {
        return make_error("DynamicConv: input 'value' must have shape (batch, sequence, num_heads*head_size = " +
                          std::to_string(channels) + "), got " + shape_string(value_shape));
      }
      const std::vector<int64_t> expected_logits{value_shape[0], value_shape[1], num_heads * kernel_size};
      if (logits_shape != expected_logits) {
        return make_error("DynamicConv: input 'kernel_logits' must have shape " + shape_string(expected_logits) +
                          " (batch, sequence, num_heads*kernel_size), got " + shape_string(logits_shape));
      }
      Ort::UnownedValue output = context.GetOutput(0, value_shape);
      convbert::DynamicConvShape shape{value_shape[0], value_shape[1], num_heads, head_size, kernel_size};
      if (shape.rows() == 0) return nullptr;

      ParallelTask<U> task{reinterpret_cast<const U*>(value.GetTensorData<T>()),
                           reinterpret_cast<const U*>(logits.GetTensorData<T>()),
                           reinterpret_cast<U*>(output.GetTensorMutableData<T>()), shape, shape.rows()};
      const int64_t work_per_row = std::max<int64_t>(1, channels * kernel_size);
      const int64_t rows_per_task = std::max<int64_t>(1, kMinWorkPerTask / work_per_row);
      const int64_t tasks = (shape.rows() + rows_per_task - 1) / rows_per_task;
      if (tasks < 2) {
        run_task<U>(&task, 0);
      } else {
        task.rows_per_task = rows_per_task;
        context.ParallelFor(&run_task<U>, static_cast<size_t>(tasks), 0, &task);
      }
      return nullptr;
    } catch (const Ort::Exception& e) {
      return Ort::Status(e).release();
    } catch (const std::exception& e) {
      return Ort::Status(e).release();
    }
  }
};

template <typename T, typename U, ONNXTensorElementDataType kType>
struct DynamicConvOp : Ort::CustomOpBase<DynamicConvOp<T, U, kType>, DynamicConvKernel<T, U>, /*WithStatus=*/true> {
  DynamicConvOp() { this->InferOutputShapeFn = convbert_ort::output_like_input0; }  // out has the shape of value
  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* info, void** op_kernel) const {
    try {
      Ort::ConstKernelInfo kernel_info(info);
      // The node also carries plugin_namespace (for TensorRT); this kernel does not need it.
      const int64_t kernel_size = kernel_info.GetAttribute<int64_t>("kernel_size");
      const int64_t num_heads = kernel_info.GetAttribute<int64_t>("num_heads");
      const int64_t head_size = kernel_info.GetAttribute<int64_t>("head_size");
      const std::string problem = convbert::check_attributes(kernel_size, num_heads, head_size);
      if (!problem.empty()) return make_error(problem);
      *op_kernel = new DynamicConvKernel<T, U>{kernel_size, num_heads, head_size};
      return nullptr;
    } catch (const Ort::Exception& e) {
      return make_error("DynamicConv: reading attributes kernel_size, num_heads, head_size failed: " +
                        std::string(e.what()));
    } catch (const std::exception& e) {
      return Ort::Status(e).release();
    }
  }

  const char* GetName() const { return kOpType; }
  size_t GetInputTypeCount() const { return 2; }
  ONNXTensorElementDataType GetInputType(size_t /*index*/) const { return kType; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t /*index*/) const { return kType; }
};

using DynamicConvFloat = DynamicConvOp<float, float, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT>;
using DynamicConvHalf = DynamicConvOp<Ort::Float16_t, uint16_t, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16>;
static_assert(sizeof(Ort::Float16_t) == sizeof(uint16_t), "Ort::Float16_t must be 16-bit storage");

// The domain must outlive every session that uses it: keep it for the life of the process.
std::vector<Ort::CustomOpDomain>& domains() {
  static std::vector<Ort::CustomOpDomain> kept;
  return kept;
}
std::mutex& domains_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

extern "C" {

#if defined(_WIN32)
__declspec(dllexport)
#else
__attribute__((visibility("default")))
#endif
OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  const OrtApi* api = api_base->GetApi(kRequestedApiVersion);
  if (api == nullptr) {
    const std::string message = "convbert_ort_ops needs ONNX Runtime API version " +
                                std::to_string(kRequestedApiVersion) + " (onnxruntime >= 1.21); this onnxruntime is " +
                                api_base->GetVersionString();
    // Without an OrtApi we cannot create a status; the older API's CreateStatus is ABI-stable.
    const OrtApi* fallback = api_base->GetApi(1);
    return fallback ? fallback->CreateStatus(ORT_FAIL, message.c_str()) : nullptr;
  }
  Ort::InitApi(api);
  static const DynamicConvFloat float_op;
  static const DynamicConvHalf half_op;
  try {
    Ort::CustomOpDomain domain(kDomain);
    domain.Add(&float_op);
    domain.Add(&half_op);
    convbert_ort::add_cpu_fused_ops(domain);
    Ort::UnownedSessionOptions session_options(options);
    session_options.Add(domain);
    std::lock_guard<std::mutex> lock(domains_mutex());
    domains().push_back(std::move(domain));
    return nullptr;
  } catch (const Ort::Exception& e) {
    return Ort::Status(e).release();
  }
}

}  // extern "C"
