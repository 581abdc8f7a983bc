// ONNX Runtime CPU kernels for DepthwiseConv, AddLayerNorm and BiasGelu (float32), in the library's
// domain com.convbert_export. Semantics: include/depthwise_conv_kernel.h, include/add_layer_norm_kernel.h
// and include/bias_gelu_kernel.h.
//
// The hot loops are compiled once per ISA (CONVBERT_CPU_CLONES: AVX-512, AVX2 + FMA, baseline)
// and the loader picks one; rows of the flattened leading axes are split over the session's
// intra-op thread pool in tasks big enough that small calls stay on the calling thread.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "add_layer_norm_kernel.h"
#include "bias_gelu_kernel.h"
#include "depthwise_conv_kernel.h"
#include "op_library.h"

namespace convbert_ort {
namespace {

// Rows of (batch x sequence) per parallel task: a call with fewer rows than two tasks runs on the
// calling thread. Measured with tools/bench_fused_ops.py (2 EPYC vCPUs, spinning off): a sleeping
// pool thread joined too late to help below a few hundred rows (1 x 128 x 768 took 15-17 us on one
// thread, 19-24 us split into tasks of 8-64 rows), so 1 x 128 stays on the calling thread.
constexpr int64_t kDepthwiseRowsPerTask = 128;
constexpr int64_t kLayerNormRowsPerTask = 128;
// BiasGelu costs ~20x a LayerNorm per element (the erf polynomial): 1 x 128 x 3072 splits in four.
constexpr int64_t kBiasGeluElementsPerTask = 32 * 3072;

bool present(const Ort::ConstValue& value) { return static_cast<const OrtValue*>(value) != nullptr; }

std::vector<int64_t> shape_of(const Ort::ConstValue& value) { return value.GetTensorTypeAndShapeInfo().GetShape(); }

// ---- DepthwiseConv --------------------------------------------------------------------------------

CONVBERT_CPU_CLONES
void depthwise_conv_task(const convbert::DepthwiseConvArgs& args, int64_t row_begin, int64_t row_end) {
  if (args.shape.kernel_size == 9) {  // ConvBERT's conv_kernel_size: taps and inputs in registers
    convbert::depthwise_conv_rows<9>(args, row_begin, row_end);
  } else {
    convbert::depthwise_conv_rows<0>(args, row_begin, row_end);
  }
}

struct DepthwiseConvKernel {
  // The weight regrouped once when it is a constant initializer (else per call).
  std::vector<float> constant_taps;
  std::vector<int64_t> constant_weight_shape;

  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) {
    try {
      Ort::KernelContext context(raw_context);
      Ort::ConstValue x = context.GetInput(0);
      Ort::ConstValue weight = context.GetInput(1);
      Ort::ConstValue mask = context.GetInputCount() > 2 ? context.GetInput(2) : Ort::ConstValue(nullptr);
      const std::vector<int64_t> x_shape = shape_of(x);
      const std::vector<int64_t> w_shape = shape_of(weight);
      if (x_shape.size() != 3) {
        return make_error("DepthwiseConv: input 'x' must have shape (batch, sequence, channels), got " +
                          shape_string(x_shape));
      }
      const int64_t channels = x_shape[2];
      if (w_shape.size() != 2 || w_shape[0] != channels || w_shape[1] % 2 == 0 || w_shape[1] < 1 ||
          w_shape[1] > convbert::kDepthwiseMaxKernelSize) {
        return make_error("DepthwiseConv: input 'weight' must have shape (channels = " + std::to_string(channels) +
                          ", kernel_size odd <= " + std::to_string(convbert::kDepthwiseMaxKernelSize) + "), got " +
                          shape_string(w_shape));
      }
      const float* mask_data = nullptr;
      if (present(mask)) {
        const std::vector<int64_t> m_shape = shape_of(mask);
        const std::vector<int64_t> expected{x_shape[0], x_shape[1]};
        const std::vector<int64_t> expected3{x_shape[0], x_shape[1], 1};
        if (m_shape != expected && m_shape != expected3) {
          return make_error("DepthwiseConv: input 'mask' must have shape " + shape_string(expected) + " or " +
                            shape_string(expected3) + " (batch, sequence[, 1]), got " + shape_string(m_shape));
        }
        mask_data = mask.GetTensorData<float>();
      }
      Ort::UnownedValue y = context.GetOutput(0, x_shape);
      convbert::DepthwiseConvArgs args;
      args.shape = convbert::DepthwiseConvShape{x_shape[0], x_shape[1], channels, w_shape[1]};
      if (args.shape.rows() == 0 || channels == 0) return nullptr;
      std::vector<float> taps;
      if (w_shape != constant_weight_shape) {
        taps = convbert::depthwise_conv_taps(weight.GetTensorData<float>(), channels, w_shape[1]);
      }
      const std::vector<float> zeros(static_cast<size_t>(channels), 0.0f);
      args.x = x.GetTensorData<float>();
      args.weight = weight.GetTensorData<float>();
      args.taps = taps.empty() ? constant_taps.data() : taps.data();
      args.mask = mask_data;
      args.zeros = zeros.data();
      args.y = y.GetTensorMutableData<float>();
      parallel_rows(context, args.shape.rows(), kDepthwiseRowsPerTask,
                    [&args](int64_t begin, int64_t end) { depthwise_conv_task(args, begin, end); });
      return nullptr;
    } catch (const Ort::Exception& e) {
      return Ort::Status(e).release();
    } catch (const std::exception& e) {
      return Ort::Status(e).release();
    }
  }
};

struct DepthwiseConvOp : Ort::CustomOpBase<DepthwiseConvOp, DepthwiseConvKernel, /*WithStatus=*/true> {
  DepthwiseConvOp() { InferOutputShapeFn = output_like_input0; }  // y has the shape of x
  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* info, void** op_kernel) const {
    try {
      auto kernel = std::make_unique<DepthwiseConvKernel>();
      int is_constant = 0;
      Ort::ConstValue weight = Ort::ConstKernelInfo(info).GetTensorConstantInput(1, &is_constant);
      if (is_constant && present(weight)) {
        const std::vector<int64_t> shape = shape_of(weight);
        if (shape.size() == 2 && shape[1] >= 1 && shape[1] % 2 == 1 && shape[1] <= convbert::kDepthwiseMaxKernelSize) {
          kernel->constant_taps = convbert::depthwise_conv_taps(weight.GetTensorData<float>(), shape[0], shape[1]);
          kernel->constant_weight_shape = shape;
        }
      }
      *op_kernel = kernel.release();
      return nullptr;
    } catch (const Ort::Exception& e) {
      return Ort::Status(e).release();
    } catch (const std::exception& e) {
      return Ort::Status(e).release();
    }
  }
  const char* GetName() const { return "DepthwiseConv"; }
  size_t GetInputTypeCount() const { return 3; }  // x, weight, mask
  ONNXTensorElementDataType GetInputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t index) const {
    return index == 2 ? INPUT_OUTPUT_OPTIONAL : INPUT_OUTPUT_REQUIRED;
  }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

// ---- AddLayerNorm -----------------------------------------------------------------------------------

enum AddLayerNormInput : size_t { kX = 0, kSkip = 1, kGamma = 2, kBeta = 3, kBias = 4 };

CONVBERT_CPU_CLONES
void add_layer_norm_task(const convbert::AddLayerNormArgs& args, int64_t row_begin, int64_t row_end) {
  convbert::add_layer_norm_rows(args, row_begin, row_end);
}

struct AddLayerNormKernel {
  float epsilon;

  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) {
    try {
      Ort::KernelContext context(raw_context);
      const size_t inputs = context.GetInputCount();
      auto input = [&](size_t index) { return index < inputs ? context.GetInput(index) : Ort::ConstValue(nullptr); };
      Ort::ConstValue x = input(kX), skip = input(kSkip), gamma = input(kGamma), beta = input(kBeta),
                      bias = input(kBias);
      const std::vector<int64_t> x_shape = shape_of(x);
      if (x_shape.empty()) {
        return make_error("AddLayerNorm: input 'x' must have at least one axis (..., channels), got a scalar");
      }
      const int64_t channels = x_shape.back();
      const std::vector<int64_t> vector_shape{channels};
      if (present(skip) && shape_of(skip) != x_shape) {
        return make_error("AddLayerNorm: input 'skip' must have the shape of x " + shape_string(x_shape) + ", got " +
                          shape_string(shape_of(skip)));
      }
      if (!present(gamma)) return make_error("AddLayerNorm: input 2 'gamma' is required");
      const std::pair<const char*, const Ort::ConstValue*> vectors[] = {{"gamma", &gamma}, {"beta", &beta}, {"bias", &bias}};
      for (const auto& [name, value] : vectors) {
        if (present(*value) && shape_of(*value) != vector_shape) {
          return make_error(std::string("AddLayerNorm: input '") + name + "' must have shape " +
                            shape_string(vector_shape) + " (the last axis of x " + shape_string(x_shape) + "), got " +
                            shape_string(shape_of(*value)));
        }
      }
      Ort::UnownedValue y = context.GetOutput(0, x_shape);
      Ort::UnownedValue sum = context.GetOutputCount() > 1 ? context.GetOutput(1, x_shape) : Ort::UnownedValue(nullptr);
      int64_t rows = 1;
      for (size_t i = 0; i + 1 < x_shape.size(); ++i) rows *= x_shape[i];
      if (rows == 0 || channels == 0) return nullptr;

      std::vector<float> zeros;
      if (!present(skip) || !present(beta) || !present(bias)) zeros.assign(static_cast<size_t>(channels), 0.0f);
      convbert::AddLayerNormArgs args;
      args.x = x.GetTensorData<float>();
      args.skip = present(skip) ? skip.GetTensorData<float>() : zeros.data();
      args.skip_stride = present(skip) ? channels : 0;
      args.gamma = gamma.GetTensorData<float>();
      args.beta = present(beta) ? beta.GetTensorData<float>() : zeros.data();
      args.bias = present(bias) ? bias.GetTensorData<float>() : zeros.data();
      args.y = y.GetTensorMutableData<float>();
      args.sum = static_cast<OrtValue*>(sum) ? sum.GetTensorMutableData<float>() : nullptr;
      args.channels = channels;
      args.epsilon = epsilon;
      parallel_rows(context, rows, kLayerNormRowsPerTask,
                    [&args](int64_t begin, int64_t end) { add_layer_norm_task(args, begin, end); });
      return nullptr;
    } catch (const Ort::Exception& e) {
      return Ort::Status(e).release();
    } catch (const std::exception& e) {
      return Ort::Status(e).release();
    }
  }
};

struct AddLayerNormOp : Ort::CustomOpBase<AddLayerNormOp, AddLayerNormKernel, /*WithStatus=*/true> {
  // y has the shape of x. The optional sum is left to ONNX Runtime: the shape-inference context does
  // not say whether the node has a second output, and setting an absent one is out of bounds.
  AddLayerNormOp() { InferOutputShapeFn = output_like_input0; }
  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* info, void** op_kernel) const {
    float epsilon = 1e-12f;
    try {
      epsilon = Ort::ConstKernelInfo(info).GetAttribute<float>("epsilon");
    } catch (const Ort::Exception&) {
      // absent: the default
    }
    if (!(epsilon >= 0.0f) || !std::isfinite(epsilon)) {
      return make_error("AddLayerNorm: attribute 'epsilon' must be a finite float >= 0, got " + std::to_string(epsilon));
    }
    *op_kernel = new AddLayerNormKernel{epsilon};
    return nullptr;
  }
  const char* GetName() const { return "AddLayerNorm"; }
  size_t GetInputTypeCount() const { return 5; }  // x, skip, gamma, beta, bias
  ONNXTensorElementDataType GetInputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t index) const {
    return index == kX || index == kGamma ? INPUT_OUTPUT_REQUIRED : INPUT_OUTPUT_OPTIONAL;
  }
  size_t GetOutputTypeCount() const { return 2; }  // y, sum
  ONNXTensorElementDataType GetOutputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  OrtCustomOpInputOutputCharacteristic GetOutputCharacteristic(size_t index) const {
    return index == 0 ? INPUT_OUTPUT_REQUIRED : INPUT_OUTPUT_OPTIONAL;
  }
};

// ---- BiasGelu ----------------------------------------------------------------------------------------

CONVBERT_CPU_CLONES
void bias_gelu_task(const float* x, const float* bias, float* y, int64_t channels, int64_t row_begin, int64_t row_end) {
  convbert::bias_gelu_rows(x, bias, y, channels, row_begin, row_end);
}

struct BiasGeluKernel {
  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) {
    try {
      Ort::KernelContext context(raw_context);
      Ort::ConstValue x = context.GetInput(0);
      Ort::ConstValue bias = context.GetInput(1);
      const std::vector<int64_t> x_shape = shape_of(x);
      if (x_shape.empty()) {
        return make_error("BiasGelu: input 'x' must have at least one axis (..., channels), got a scalar");
      }
      const int64_t channels = x_shape.back();
      const std::vector<int64_t> bias_shape{channels};
      if (shape_of(bias) != bias_shape) {
        return make_error("BiasGelu: input 'bias' must have shape " + shape_string(bias_shape) + " (the last axis of x " +
                          shape_string(x_shape) + "), got " + shape_string(shape_of(bias)));
      }
      Ort::UnownedValue y = context.GetOutput(0, x_shape);
      int64_t rows = 1;
      for (size_t i = 0; i + 1 < x_shape.size(); ++i) rows *= x_shape[i];
      if (rows == 0 || channels == 0) return nullptr;
      const float* x_data = x.GetTensorData<float>();
      const float* bias_data = bias.GetTensorData<float>();
      float* y_data = y.GetTensorMutableData<float>();
      parallel_rows(context, rows, std::max<int64_t>(1, kBiasGeluElementsPerTask / channels),
                    [=](int64_t begin, int64_t end) { bias_gelu_task(x_data, bias_data, y_data, channels, begin, end); });
      return nullptr;
    } catch (const Ort::Exception& e) {
      return Ort::Status(e).release();
    } catch (const std::exception& e) {
      return Ort::Status(e).release();
    }
  }
};

struct BiasGeluOp : Ort::CustomOpBase<BiasGeluOp, BiasGeluKernel, /*WithStatus=*/true> {
  BiasGeluOp() { InferOutputShapeFn = output_like_input0; }  // y has the shape of x
  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* /*info*/, void** op_kernel) const {
    *op_kernel = new BiasGeluKernel{};
    return nullptr;
  }
  const char* GetName() const { return "BiasGelu"; }
  size_t GetInputTypeCount() const { return 2; }  // x, bias
  ONNXTensorElementDataType GetInputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

}  // namespace

void add_cpu_fused_ops(Ort::CustomOpDomain& domain) {
  static const DepthwiseConvOp depthwise_conv;
  static const AddLayerNormOp add_layer_norm;
  static const BiasGeluOp bias_gelu;
  domain.Add(&depthwise_conv);
  domain.Add(&add_layer_norm);
  domain.Add(&bias_gelu);
}

}  // namespace convbert_ort
