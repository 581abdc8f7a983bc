// Loads the DynamicConv TensorRT plugin library with dlopen and exercises it on the CPU through
// TensorRT's public interfaces, as TensorRT's plugin registry and builder would call it: every
// call below except enqueue (which needs a GPU). Compiled by tests/test_custom_ops.py against
// TensorRT's headers only (no libnvinfer): IExprBuilder and IDimensionExpr come from this file.
//
//   usage: trt_plugin_harness PLUGIN.so
// Prints one line per check ("ok ..." or "FAIL ..."), then "harness: N checks, M failed";
// exits 1 if any check failed, 2 if the library cannot be loaded.
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "NvInferRuntime.h"

using namespace nvinfer1;

namespace {

int gChecks = 0;
int gFailures = 0;

void check(bool ok, std::string const& what) {
  ++gChecks;
  if (!ok) ++gFailures;
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
}

// ---- the logger the plugin finds through setLoggerFinder ------------------------------------
class Logger : public ILogger {
 public:
  void log(Severity severity, AsciiChar const* msg) noexcept override {
    if (severity <= Severity::kWARNING) messages.emplace_back(msg);
  }
  // The last message logged since the previous call ("" if none).
  std::string take() {
    std::string last = messages.empty() ? "" : messages.back();
    messages.clear();
    return last;
  }
  std::vector<std::string> messages;
};

class LoggerFinder : public ILoggerFinder {
 public:
  explicit LoggerFinder(ILogger* logger) : mLogger(logger) {}
  ILogger* findLogger() override { return mLogger; }

 private:
  ILogger* mLogger;
};

// ---- an expression builder of our own: constants fold, everything else stays symbolic ---------
class ExprImpl : public apiv::VDimensionExpr {
 public:
  ExprImpl(bool constant, int64_t value, std::string name) : mConstant(constant), mValue(value), mName(std::move(name)) {}
  bool isConstant() const override { return mConstant; }
  int64_t getConstantValue() const override { return mConstant ? mValue : INT64_MIN; }
  bool isSizeTensor() const override { return false; }
  std::string const& name() const { return mName; }

 private:
  bool mConstant;
  int64_t mValue;
  std::string mName;
};

class Expr : public IDimensionExpr {
 public:
  explicit Expr(ExprImpl* impl) : mOwn(impl) { mImpl = impl; }
  ExprImpl const& impl() const { return *mOwn; }

 private:
  ExprImpl* mOwn;
};

class BuilderImpl : public apiv::VExprBuilder {
 public:
  IDimensionExpr const* constant(int64_t value) override { return make(true, value, std::to_string(value)); }
  IDimensionExpr const* symbol(std::string const& name) { return make(false, 0, name); }
  IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& first,
                                  IDimensionExpr const& second) override {
    auto const& a = static_cast<Expr const&>(first).impl();
    auto const& b = static_cast<Expr const&>(second).impl();
    if (a.isConstant() && b.isConstant()) {
      int64_t const x = a.getConstantValue(), y = b.getConstantValue();
      switch (op) {
        case DimensionOperation::kSUM: return constant(x + y);
        case DimensionOperation::kPROD: return constant(x * y);
        case DimensionOperation::kMAX: return constant(x > y ? x : y);
        case DimensionOperation::kMIN: return constant(x < y ? x : y);
        case DimensionOperation::kSUB: return constant(x - y);
        default: break;
      }
    }
    return make(false, 0, "(" + a.name() + " op" + std::to_string(static_cast<int>(op)) + " " + b.name() + ")");
  }
  IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override {
    return nullptr;
  }
  std::string nameOf(IDimensionExpr const* e) const { return static_cast<Expr const*>(e)->impl().name(); }

 private:
  IDimensionExpr const* make(bool isConst, int64_t value, std::string name) {
    mImpls.emplace_back(new ExprImpl(isConst, value, std::move(name)));
    mExprs.emplace_back(new Expr(mImpls.back().get()));
    return mExprs.back().get();
  }
  std::deque<std::unique_ptr<ExprImpl>> mImpls;
  std::deque<std::unique_ptr<Expr>> mExprs;
};

class ExprBuilder : public IExprBuilder {
 public:
  explicit ExprBuilder(BuilderImpl* impl) { mImpl = impl; }
};

// ---- helpers --------------------------------------------------------------------------------
struct Fields {
  std::vector<PluginField> list;
  PluginFieldCollection collection{};
  std::deque<int64_t> storage64;
  std::deque<int32_t> storage32;
  std::deque<float> storageF;
  void add32(char const* name, int32_t v) {
    storage32.push_back(v);
    list.emplace_back(name, &storage32.back(), PluginFieldType::kINT32, 1);
  }
  void add64(char const* name, int64_t v) {
    storage64.push_back(v);
    list.emplace_back(name, &storage64.back(), PluginFieldType::kINT64, 1);
  }
  void addF(char const* name, float v) {
    storageF.push_back(v);
    list.emplace_back(name, &storageF.back(), PluginFieldType::kFLOAT32, 1);
  }
  PluginFieldCollection const* get() {
    collection.nbFields = static_cast<int32_t>(list.size());
    collection.fields = list.data();
    return &collection;
  }
};

Dims dims3(int64_t a, int64_t b, int64_t c) {
  Dims d{};
  d.nbDims = 3;
  d.d[0] = a;
  d.d[1] = b;
  d.d[2] = c;
  return d;
}

DynamicPluginTensorDesc desc(DataType type, TensorFormat format, Dims dims) {
  DynamicPluginTensorDesc out{};
  out.desc.dims = dims;
  out.desc.type = type;
  out.desc.format = format;
  out.desc.scale = 1.0F;
  out.min = dims;
  out.max = dims;
  out.opt = dims;
  return out;
}

// The three integer fields of a plugin, through getFieldsToSerialize ({-1,-1,-1} if absent).
std::vector<int64_t> serializedFields(IPluginV3OneRuntime* runtime) {
  std::vector<int64_t> values{-1, -1, -1};
  PluginFieldCollection const* fc = runtime->getFieldsToSerialize();
  char const* names[] = {"kernel_size", "num_heads", "head_size"};
  for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
    for (int k = 0; k < 3; ++k) {
      if (std::strcmp(fc->fields[i].name, names[k]) != 0) continue;
      if (fc->fields[i].type == PluginFieldType::kINT32) values[k] = *static_cast<int32_t const*>(fc->fields[i].data);
      if (fc->fields[i].type == PluginFieldType::kINT64) values[k] = *static_cast<int64_t const*>(fc->fields[i].data);
    }
  }
  return values;
}

std::string join(std::vector<int64_t> const& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
    return 2;
  }
  void* handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    std::fprintf(stderr, "dlopen %s failed: %s\n", argv[1], dlerror());
    return 2;
  }
  using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
  using SetLoggerFinder = void (*)(ILoggerFinder*);
  auto getCreators = reinterpret_cast<GetCreators>(dlsym(handle, "getCreators"));
  auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(handle, "setLoggerFinder"));
  check(getCreators != nullptr && setLoggerFinder != nullptr, "exports getCreators and setLoggerFinder");
  if (getCreators == nullptr || setLoggerFinder == nullptr) return 1;
  Logger logger;
  LoggerFinder finder(&logger);
  setLoggerFinder(&finder);

  int32_t nbCreators = -1;
  IPluginCreatorInterface* const* creators = getCreators(nbCreators);
  check(nbCreators == 1 && creators != nullptr && creators[0] != nullptr,
        "getCreators() returns 1 creator (got " + std::to_string(nbCreators) + ")");
  if (nbCreators != 1 || creators == nullptr || creators[0] == nullptr) return 1;
  InterfaceInfo const info = creators[0]->getInterfaceInfo();
  check(std::strcmp(info.kind, "PLUGIN CREATOR_V3ONE") == 0,
        std::string("creator interface is ") + info.kind + " " + std::to_string(info.major) + "." +
            std::to_string(info.minor));
  auto* creator = static_cast<IPluginCreatorV3One*>(creators[0]);
  check(std::strcmp(creator->getPluginName(), "DynamicConv") == 0 &&
            std::strcmp(creator->getPluginVersion(), "1") == 0 &&
            std::strcmp(creator->getPluginNamespace(), "convbert_export") == 0,
        std::string("creator name/version/namespace: ") + creator->getPluginName() + " / " +
            creator->getPluginVersion() + " / " + creator->getPluginNamespace());
  PluginFieldCollection const* names = creator->getFieldNames();
  std::string fieldNames;
  for (int32_t i = 0; names != nullptr && i < names->nbFields; ++i) fieldNames += std::string(" ") + names->fields[i].name;
  check(fieldNames == " kernel_size num_heads head_size", "getFieldNames:" + fieldNames);

  // ---- createPlugin: INT32 fields (as the ONNX parser gives them) and INT64 fields -------------
  Fields f32;
  f32.add32("kernel_size", 9);
  f32.add32("num_heads", 4);
  f32.add32("head_size", 16);
  Fields tmp;
  tmp.list.emplace_back("plugin_namespace", "convbert_export", PluginFieldType::kCHAR, 15);
  f32.list.push_back(tmp.list.back());  // fields the plugin does not read are ignored
  IPluginV3* plugin = creator->createPlugin("dc32", f32.get(), TensorRTPhase::kBUILD);
  check(plugin != nullptr, "createPlugin from INT32 fields (K=9, H=4, D=16, plus plugin_namespace)");
  Fields f64;
  f64.add64("kernel_size", 9);
  f64.add64("num_heads", 4);
  f64.add64("head_size", 16);
  IPluginV3* plugin64 = creator->createPlugin("dc64", f64.get(), TensorRTPhase::kBUILD);
  check(plugin64 != nullptr, "createPlugin from INT64 fields");
  if (plugin == nullptr || plugin64 == nullptr) return 1;
  auto* runtime64 = static_cast<IPluginV3OneRuntime*>(plugin64->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  check(join(serializedFields(runtime64)) == "9,4,16", "INT64 fields read as " + join(serializedFields(runtime64)));
  delete plugin64;

  // ---- refusals ---------------------------------------------------------------------------------
  struct Bad {
    char const* what;
    int64_t k, h, d;
    bool dropHead;
    bool floatField;
    char const* expect;
  };
  Bad const bad[] = {
      {"missing head_size", 9, 4, 16, true, false, "required"},
      {"even kernel_size 4", 4, 4, 16, false, false, "odd"},
      {"kernel_size 257 over the CUDA maximum 255", 257, 1, 16, false, false, "kernel_size=257"},
      {"heads x kernel 64 x 255 over the 48 KB shared memory", 255, 64, 16, false, false, "48 KB of shared memory"},
      {"num_heads 0", 9, 0, 16, false, false, "num_heads=0"},
      {"kernel_size given as FLOAT32", 9, 4, 16, false, true, "INT32 or INT64"},
  };
  for (Bad const& b : bad) {
    Fields f;
    if (b.floatField) f.addF("kernel_size", static_cast<float>(b.k));
    else f.add32("kernel_size", static_cast<int32_t>(b.k));
    f.add32("num_heads", static_cast<int32_t>(b.h));
    if (!b.dropHead) f.add32("head_size", static_cast<int32_t>(b.d));
    logger.take();
    IPluginV3* p = creator->createPlugin("bad", f.get(), TensorRTPhase::kBUILD);
    std::string const message = logger.take();
    check(p == nullptr && message.find(b.expect) != std::string::npos,
          std::string("refuses ") + b.what + ": \"" + message + "\"");
    delete p;
  }
  {
    Fields f;  // the largest accepted: 48 x 255 = 12240 <= 12288
    f.add32("kernel_size", 255);
    f.add32("num_heads", 48);
    f.add32("head_size", 8);
    IPluginV3* p = creator->createPlugin("edge", f.get(), TensorRTPhase::kBUILD);
    check(p != nullptr, "accepts heads x kernel 48 x 255 = 12240 (within 12288)");
    delete p;
  }

  // ---- capabilities, identity, clone, serialize and re-create ---------------------------------
  auto* core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
  auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
  auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  check(core != nullptr && build != nullptr && runtime != nullptr, "core, build and runtime capabilities");
  check(std::strcmp(core->getInterfaceInfo().kind, "PLUGIN_V3ONE_CORE") == 0 &&
            std::strcmp(build->getInterfaceInfo().kind, "PLUGIN_V3ONE_BUILD") == 0 &&
            std::strcmp(runtime->getInterfaceInfo().kind, "PLUGIN_V3ONE_RUNTIME") == 0,
        std::string("capability kinds: ") + core->getInterfaceInfo().kind + ", " + build->getInterfaceInfo().kind +
            ", " + runtime->getInterfaceInfo().kind);
  check(std::strcmp(core->getPluginName(), "DynamicConv") == 0 && std::strcmp(core->getPluginVersion(), "1") == 0 &&
            std::strcmp(core->getPluginNamespace(), "convbert_export") == 0,
        "plugin name/version/namespace: DynamicConv / 1 / convbert_export");
  check(build->getNbOutputs() == 1, "getNbOutputs() == 1");
  std::vector<int64_t> const fields = serializedFields(runtime);
  check(join(fields) == "9,4,16", "getFieldsToSerialize: kernel_size,num_heads,head_size = " + join(fields));
  IPluginV3* cloned = plugin->clone();
  check(cloned != nullptr && cloned != plugin, "clone() gives a new plugin");
  auto* clonedRuntime = static_cast<IPluginV3OneRuntime*>(cloned->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  check(join(serializedFields(clonedRuntime)) == "9,4,16", "the clone serializes the same fields");
  IPluginV3* recreated = creator->createPlugin("dc", runtime->getFieldsToSerialize(), TensorRTPhase::kRUNTIME);
  check(recreated != nullptr, "re-created from the serialized fields (runtime phase)");
  if (recreated != nullptr) {
    auto* r = static_cast<IPluginV3OneRuntime*>(recreated->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    check(join(serializedFields(r)) == "9,4,16", "the re-created plugin serializes the same fields");
    IPluginV3* attached = r->attachToContext(nullptr);
    check(attached != nullptr, "attachToContext gives a plugin");
    delete attached;
  }
  delete recreated;
  delete cloned;

  // ---- supportsFormatCombination: fp32 and fp16, linear, all the same -----------------------
  struct Combo {
    DataType a, b, c;
    TensorFormat format;
    bool expect;
    char const* what;
  };
  Combo const combos[] = {
      {DataType::kFLOAT, DataType::kFLOAT, DataType::kFLOAT, TensorFormat::kLINEAR, true, "fp32 linear"},
      {DataType::kHALF, DataType::kHALF, DataType::kHALF, TensorFormat::kLINEAR, true, "fp16 linear"},
      {DataType::kFLOAT, DataType::kHALF, DataType::kFLOAT, TensorFormat::kLINEAR, false, "mixed fp32/fp16"},
      {DataType::kBF16, DataType::kBF16, DataType::kBF16, TensorFormat::kLINEAR, false, "bf16"},
      {DataType::kINT8, DataType::kINT8, DataType::kINT8, TensorFormat::kLINEAR, false, "int8"},
      {DataType::kINT32, DataType::kINT32, DataType::kINT32, TensorFormat::kLINEAR, false, "int32"},
      {DataType::kHALF, DataType::kHALF, DataType::kHALF, TensorFormat::kCHW2, false, "fp16 CHW2"},
      {DataType::kFLOAT, DataType::kFLOAT, DataType::kFLOAT, TensorFormat::kHWC8, false, "fp32 HWC8"},
  };
  for (Combo const& c : combos) {
    DynamicPluginTensorDesc io[3] = {desc(c.a, c.format, dims3(-1, -1, 64)), desc(c.b, c.format, dims3(-1, -1, 36)),
                                     desc(c.c, c.format, dims3(-1, -1, 64))};
    bool all = true;
    for (int32_t pos = 0; pos < 3; ++pos) all = all && build->supportsFormatCombination(pos, io, 2, 1);
    check(all == c.expect, std::string("supportsFormatCombination ") + c.what + ": " + (all ? "accepted" : "refused"));
  }
  {
    DynamicPluginTensorDesc io[3] = {desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(-1, -1, 64)),
                                     desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(-1, -1, 36)),
                                     desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(-1, -1, 64))};
    check(!build->supportsFormatCombination(3, io, 2, 1) && !build->supportsFormatCombination(0, io, 3, 1),
          "supportsFormatCombination refuses a position or tensor count out of range");
  }
  DataType outType = DataType::kINT32;
  DataType const halfIn[2] = {DataType::kHALF, DataType::kHALF};
  check(build->getOutputDataTypes(&outType, 1, halfIn, 2) == 0 && outType == DataType::kHALF,
        "getOutputDataTypes: fp16 in, fp16 out");

  // ---- getOutputShapes through our IExprBuilder, with dynamic B and S ------------------------
  BuilderImpl builderImpl;
  ExprBuilder exprBuilder(&builderImpl);
  IDimensionExpr const* B = builderImpl.symbol("B");
  IDimensionExpr const* S = builderImpl.symbol("S");
  DimsExprs in[2];
  in[0].nbDims = 3;
  in[0].d[0] = B;
  in[0].d[1] = S;
  in[0].d[2] = exprBuilder.constant(64);
  in[1].nbDims = 3;
  in[1].d[0] = B;
  in[1].d[1] = S;
  in[1].d[2] = exprBuilder.constant(36);
  DimsExprs out[1];
  int32_t status = build->getOutputShapes(in, 2, nullptr, 0, out, 1, exprBuilder);
  bool const shapesOk = status == 0 && out[0].nbDims == 3 && out[0].d[0] == B && out[0].d[1] == S &&
                        out[0].d[2] != nullptr && out[0].d[2]->isConstant() && out[0].d[2]->getConstantValue() == 64;
  check(shapesOk, "getOutputShapes (B, S, 64), (B, S, 36) -> (" +
                      (status == 0 ? builderImpl.nameOf(out[0].d[0]) + ", " + builderImpl.nameOf(out[0].d[1]) +
                                         ", " + builderImpl.nameOf(out[0].d[2])
                                   : std::string("status ") + std::to_string(status)) +
                      ")");
  in[1].d[2] = exprBuilder.constant(35);
  logger.take();
  status = build->getOutputShapes(in, 2, nullptr, 0, out, 1, exprBuilder);
  std::string message = logger.take();
  check(status != 0 && message.find("kernel_logits (B, S, 36)") != std::string::npos,
        "getOutputShapes refuses kernel_logits width 35: \"" + message + "\"");

  // ---- configurePlugin with -1 dims, and its refusals -----------------------------------------
  DynamicPluginTensorDesc cin[2] = {desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(-1, -1, 64)),
                                    desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(-1, -1, 36))};
  cin[0].min = dims3(1, 1, 64);
  cin[0].max = dims3(32, 512, 64);
  cin[1].min = dims3(1, 1, 36);
  cin[1].max = dims3(32, 512, 36);
  DynamicPluginTensorDesc cout[1] = {desc(DataType::kFLOAT, TensorFormat::kLINEAR, dims3(-1, -1, 64))};
  check(build->configurePlugin(cin, 2, cout, 1) == 0, "configurePlugin accepts (-1, -1, 64), (-1, -1, 36)");
  check(build->getWorkspaceSize(cin, 2, cout, 1) == 0, "getWorkspaceSize == 0");
  cin[0].desc.dims = dims3(-1, -1, 63);
  logger.take();
  status = build->configurePlugin(cin, 2, cout, 1);
  message = logger.take();
  check(status != 0 && message.find("num_heads*head_size = 64") != std::string::npos,
        "configurePlugin refuses value width 63: \"" + message + "\"");
  cin[0].desc.dims = dims3(2, -1, 64);
  cin[1].desc.dims = dims3(3, -1, 36);
  status = build->configurePlugin(cin, 2, cout, 1);
  message = logger.take();
  check(status != 0 && message.find("same batch size") != std::string::npos,
        "configurePlugin refuses batch 2 vs 3: \"" + message + "\"");

  // ---- onShapeChange: the B/S check that keeps enqueue in bounds ------------------------------
  PluginTensorDesc rin[2] = {cin[0].desc, cin[1].desc};
  PluginTensorDesc rout[1] = {cout[0].desc};
  rin[0].dims = dims3(2, 5, 64);
  rin[1].dims = dims3(2, 5, 36);
  rout[0].dims = dims3(2, 5, 64);
  check(runtime->onShapeChange(rin, 2, rout, 1) == 0, "onShapeChange accepts (2, 5, 64), (2, 5, 36)");
  rin[1].dims = dims3(2, 4, 36);
  logger.take();
  status = runtime->onShapeChange(rin, 2, rout, 1);
  message = logger.take();
  check(status != 0 && message.find("batch and sequence") != std::string::npos && message.find("(2, 4, 36)") != std::string::npos,
        "onShapeChange refuses kernel_logits (2, 4, 36) for value (2, 5, 64): \"" + message + "\"");
  rin[1].dims = dims3(3, 5, 36);
  status = runtime->onShapeChange(rin, 2, rout, 1);
  check(status != 0, "onShapeChange refuses kernel_logits batch 3 for value batch 2");

  delete plugin;
  std::printf("harness: %d checks, %d failed\n", gChecks, gFailures);
  return gFailures == 0 ? 0 : 1;
}
