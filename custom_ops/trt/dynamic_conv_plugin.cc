// TensorRT IPluginV3 plugin for DynamicConv (name "DynamicConv", version "1", namespace "convbert_export").
//
// Load it with IPluginRegistry::loadLibrary (Python: builder.get_plugin_registry().load_library(path),
// trtexec --dynamicPlugins / --staticPlugins): the library exports getCreators() and setLoggerFinder().
// The ONNX parser maps a DynamicConv node carrying plugin_namespace="convbert_export" to this creator;
// its attributes arrive as plugin fields: kernel_size, num_heads, head_size (INT32 or INT64);
// plugin_namespace and any other field is ignored.
//
// Formats: both inputs and the output are linear float32 or linear float16, all the same type.
// Shapes: value (B, S, H*D), kernel_logits (B, S, H*K) -> output (B, S, H*D); B and S dynamic.
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "NvInferRuntime.h"
#include "dynamic_conv.cuh"

#if defined(_WIN32)
#define CONVBERT_TRT_EXPORT __declspec(dllexport)
#else
#define CONVBERT_TRT_EXPORT __attribute__((visibility("default")))
#endif

namespace convbert {
namespace {

using namespace nvinfer1;

constexpr char const* kPluginName = "DynamicConv";
constexpr char const* kPluginVersion = "1";
constexpr char const* kPluginNamespace = "convbert_export";

// The logger TensorRT hands the library through setLoggerFinder().
std::mutex gLoggerMutex;
ILoggerFinder* gLoggerFinder = nullptr;

void logError(std::string const& message) noexcept {
  try {
    std::lock_guard<std::mutex> lock(gLoggerMutex);
    ILogger* logger = gLoggerFinder != nullptr ? gLoggerFinder->findLogger() : nullptr;
    if (logger != nullptr) logger->log(ILogger::Severity::kERROR, ("DynamicConv plugin: " + message).c_str());
  } catch (...) {
  }
}

std::string dimsString(Dims const& dims) {
  std::string out = "(";
  for (int32_t i = 0; i < dims.nbDims; ++i) out += (i ? ", " : "") + std::to_string(dims.d[i]);
  return out + ")";
}

struct DynamicConvParams {
  int32_t kernelSize{0};
  int32_t numHeads{0};
  int32_t headSize{0};
};

class DynamicConvPlugin final : public IPluginV3,
                                public IPluginV3OneCore,
                                public IPluginV3OneBuild,
                                public IPluginV3OneRuntime {
 public:
  explicit DynamicConvPlugin(DynamicConvParams params) : mParams(params) {}
  DynamicConvPlugin(DynamicConvPlugin const& other) : mParams(other.mParams) {}
  ~DynamicConvPlugin() override = default;

  // IPluginV3
  IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override {
    switch (type) {
      case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
      case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
      case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
    }
    return nullptr;
  }

  IPluginV3* clone() noexcept override {
    try {
      return new DynamicConvPlugin(*this);
    } catch (std::exception const& e) {
      logError(std::string("clone failed: ") + e.what());
      return nullptr;
    }
  }

  // IPluginV3OneCore
  AsciiChar const* getPluginName() const noexcept override { return kPluginName; }
  AsciiChar const* getPluginVersion() const noexcept override { return kPluginVersion; }
  AsciiChar const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

  // IPluginV3OneBuild
  int32_t getNbOutputs() const noexcept override { return 1; }

  int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out,
                          int32_t nbOutputs) noexcept override {
    if (nbInputs != 2 || nbOutputs != 1) {
      logError("expected 2 inputs and 1 output, got " + std::to_string(nbInputs) + " and " +
               std::to_string(nbOutputs));
      return -1;
    }
    for (int32_t i = 0; i < 2; ++i) {
      if (in[i].desc.dims.nbDims != 3) {
        logError("input " + std::to_string(i) + " must be 3-D (batch, sequence, channels), got " +
                 std::to_string(in[i].desc.dims.nbDims) + "-D");
        return -1;
      }
    }
    for (int32_t axis = 0; axis < 2; ++axis) {
      int64_t const a = in[0].desc.dims.d[axis], b = in[1].desc.dims.d[axis];
      if (a >= 0 && b >= 0 && a != b) {
        logError(std::string("value and kernel_logits must have the same ") + (axis == 0 ? "batch" : "sequence") +
                 " size, got " + std::to_string(a) + " and " + std::to_string(b));
        return -1;
      }
    }
    int64_t const channels = in[0].desc.dims.d[2];
    int64_t const logitChannels = in[1].desc.dims.d[2];
    if (channels >= 0 && channels != int64_t{mParams.numHeads} * mParams.headSize) {
      logError("value's last dimension must be num_heads*head_size = " +
               std::to_string(int64_t{mParams.numHeads} * mParams.headSize) + ", got " + std::to_string(channels));
      return -1;
    }
    if (logitChannels >= 0 && logitChannels != int64_t{mParams.numHeads} * mParams.kernelSize) {
      logError("kernel_logits' last dimension must be num_heads*kernel_size = " +
               std::to_string(int64_t{mParams.numHeads} * mParams.kernelSize) + ", got " +
               std::to_string(logitChannels));
      return -1;
    }
    (void)out;
    return 0;
  }

  int32_t getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override {
    if (nbOutputs != 1 || nbInputs != 2) return -1;
    outputTypes[0] = inputTypes[0];
    return 0;
  }

  int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                          int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                          IExprBuilder& exprBuilder) noexcept override {
    if (nbInputs != 2 || nbOutputs != 1 || inputs[0].nbDims != 3 || inputs[1].nbDims != 3) {
      logError("getOutputShapes: expected 2 inputs of rank 3 (batch, sequence, channels) and 1 output");
      return -1;
    }
    int64_t const channels = int64_t{mParams.numHeads} * mParams.headSize;
    int64_t const logitChannels = int64_t{mParams.numHeads} * mParams.kernelSize;
    IDimensionExpr const* c0 = inputs[0].d[2];
    IDimensionExpr const* c1 = inputs[1].d[2];
    if ((c0 != nullptr && c0->isConstant() && c0->getConstantValue() != channels) ||
        (c1 != nullptr && c1->isConstant() && c1->getConstantValue() != logitChannels)) {
      logError("getOutputShapes: value must be (B, S, " + std::to_string(channels) + ") and kernel_logits (B, S, " +
               std::to_string(logitChannels) + ") for num_heads=" + std::to_string(mParams.numHeads) +
               ", head_size=" + std::to_string(mParams.headSize) + ", kernel_size=" +
               std::to_string(mParams.kernelSize));
      return -1;
    }
    IDimensionExpr const* outChannels = exprBuilder.constant(channels);
    if (outChannels == nullptr) return -1;
    outputs[0].nbDims = 3;  // (B, S, H*D): B and S as value's (dynamic) dims
    outputs[0].d[0] = inputs[0].d[0];
    outputs[0].d[1] = inputs[0].d[1];
    outputs[0].d[2] = outChannels;
    return 0;
  }

  bool supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override {
    if (nbInputs != 2 || nbOutputs != 1 || pos < 0 || pos > 2) return false;
    PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != TensorFormat::kLINEAR) return false;
    if (pos == 0) return desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;
    return desc.type == inOut[0].desc.type;
  }

  size_t getWorkspaceSize(DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
                          DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept override {
    return 0;
  }

  // IPluginV3OneRuntime
  int32_t onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/,
                        int32_t nbOutputs) noexcept override {
    if (nbInputs != 2 || nbOutputs != 1 || in[0].dims.nbDims != 3 || in[1].dims.nbDims != 3) {
      logError("onShapeChange: expected 2 inputs of rank 3 and 1 output");
      return -1;
    }
    Dims const& v = in[0].dims;
    Dims const& k = in[1].dims;
    int64_t const channels = int64_t{mParams.numHeads} * mParams.headSize;
    int64_t const logitChannels = int64_t{mParams.numHeads} * mParams.kernelSize;
    // enqueue reads kernel_logits as (B, S, H*K) with value's B and S: anything else reads out of bounds
    if (k.d[0] != v.d[0] || k.d[1] != v.d[1] || v.d[2] != channels || k.d[2] != logitChannels) {
      logError("onShapeChange: kernel_logits must have value's batch and sequence sizes: expected value (B, S, " +
               std::to_string(channels) + ") and kernel_logits (B, S, " + std::to_string(logitChannels) +
               "), got value " + dimsString(v) + " and kernel_logits " + dimsString(k));
      return -1;
    }
    return 0;
  }

  int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                  void const* const* inputs, void* const* outputs, void* /*workspace*/,
                  cudaStream_t stream) noexcept override {
    Dims const& dims = inputDesc[0].dims;
    DynamicConvDType dtype;
    if (inputDesc[0].type == DataType::kFLOAT) {
      dtype = DynamicConvDType::kFloat32;
    } else if (inputDesc[0].type == DataType::kHALF) {
      dtype = DynamicConvDType::kFloat16;
    } else {
      logError("enqueue: unsupported data type (expected float32 or float16)");
      return -1;
    }
    cudaError_t const status = launch_dynamic_conv(dtype, inputs[0], inputs[1], outputs[0], dims.d[0], dims.d[1],
                                                   mParams.numHeads, mParams.headSize, mParams.kernelSize, stream);
    if (status != cudaSuccess) {
      logError(std::string("enqueue: kernel launch failed: ") + cudaGetErrorString(status));
      return -1;
    }
    return 0;
  }

  IPluginV3* attachToContext(IPluginResourceContext* /*context*/) noexcept override { return clone(); }

  PluginFieldCollection const* getFieldsToSerialize() noexcept override {
    mFields.clear();
    mFields.emplace_back("kernel_size", &mParams.kernelSize, PluginFieldType::kINT32, 1);
    mFields.emplace_back("num_heads", &mParams.numHeads, PluginFieldType::kINT32, 1);
    mFields.emplace_back("head_size", &mParams.headSize, PluginFieldType::kINT32, 1);
    mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
    mFieldCollection.fields = mFields.data();
    return &mFieldCollection;
  }

 private:
  DynamicConvParams mParams;
  std::vector<PluginField> mFields;
  PluginFieldCollection mFieldCollection{};
};

// Reads one integer field given as INT32 or INT64; false if the type is neither.
bool readInt(PluginField const& field, int32_t& out) {
  if (field.data == nullptr || field.length < 1) return false;
  if (field.type == PluginFieldType::kINT32) {
    out = *static_cast<int32_t const*>(field.data);
    return true;
  }
  if (field.type == PluginFieldType::kINT64) {
    int64_t const value = *static_cast<int64_t const*>(field.data);
    if (value < INT32_MIN || value > INT32_MAX) return false;
    out = static_cast<int32_t>(value);
    return true;
  }
  return false;
}

class DynamicConvPluginCreator final : public IPluginCreatorV3One {
 public:
  DynamicConvPluginCreator() {
    mFields.emplace_back("kernel_size", nullptr, PluginFieldType::kINT32, 1);
    mFields.emplace_back("num_heads", nullptr, PluginFieldType::kINT32, 1);
    mFields.emplace_back("head_size", nullptr, PluginFieldType::kINT32, 1);
    mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
    mFieldCollection.fields = mFields.data();
  }

  AsciiChar const* getPluginName() const noexcept override { return kPluginName; }
  AsciiChar const* getPluginVersion() const noexcept override { return kPluginVersion; }
  AsciiChar const* getPluginNamespace() const noexcept override { return kPluginNamespace; }
  PluginFieldCollection const* getFieldNames() noexcept override { return &mFieldCollection; }

  IPluginV3* createPlugin(AsciiChar const* /*name*/, PluginFieldCollection const* fc,
                          TensorRTPhase /*phase*/) noexcept override {
    try {
      DynamicConvParams params;
      bool seen[3] = {false, false, false};
      for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
        PluginField const& field = fc->fields[i];
        if (field.name == nullptr) continue;
        int32_t* target = nullptr;
        int index = -1;
        if (std::strcmp(field.name, "kernel_size") == 0) { target = &params.kernelSize; index = 0; }
        else if (std::strcmp(field.name, "num_heads") == 0) { target = &params.numHeads; index = 1; }
        else if (std::strcmp(field.name, "head_size") == 0) { target = &params.headSize; index = 2; }
        if (target == nullptr) continue;  // plugin_namespace, plugin_version, ...: not ours to read
        if (!readInt(field, *target)) {
          logError(std::string("field '") + field.name + "' must be one INT32 or INT64 value");
          return nullptr;
        }
        seen[index] = true;
      }
      if (!seen[0] || !seen[1] || !seen[2]) {
        logError("fields kernel_size, num_heads and head_size are all required");
        return nullptr;
      }
      if (params.kernelSize < 1 || params.kernelSize % 2 == 0 || params.kernelSize > kMaxCudaKernelSize ||
          params.numHeads < 1 || params.headSize < 1) {
        logError("invalid attributes: kernel_size=" + std::to_string(params.kernelSize) + " (odd, 1.." +
                 std::to_string(kMaxCudaKernelSize) + "), num_heads=" + std::to_string(params.numHeads) +
                 " (>= 1), head_size=" + std::to_string(params.headSize) + " (>= 1)");
        return nullptr;
      }
      if (int64_t{params.numHeads} * params.kernelSize > kMaxCudaHeadsTimesKernel) {
        logError("num_heads*kernel_size = " + std::to_string(int64_t{params.numHeads} * params.kernelSize) +
                 " exceeds " + std::to_string(kMaxCudaHeadsTimesKernel) +
                 ": the CUDA kernel keeps one row's softmax weights in 48 KB of shared memory; use fewer heads or "
                 "a smaller kernel_size, or export with --dynamic-conv decomposed");
        return nullptr;
      }
      return new DynamicConvPlugin(params);
    } catch (std::exception const& e) {
      logError(std::string("createPlugin failed: ") + e.what());
      return nullptr;
    }
  }

 private:
  std::vector<PluginField> mFields;
  PluginFieldCollection mFieldCollection{};
};

}  // namespace
}  // namespace convbert

extern "C" {

CONVBERT_TRT_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
  std::lock_guard<std::mutex> lock(convbert::gLoggerMutex);
  convbert::gLoggerFinder = finder;
}

CONVBERT_TRT_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  static convbert::DynamicConvPluginCreator creator;
  static nvinfer1::IPluginCreatorInterface* const creators[] = {&creator};
  nbCreators = 1;
  return creators;
}

}  // extern "C"
