// Runs the DepthwiseConv, AddLayerNorm and BiasGelu CPU kernels (custom_ops/include) compiled for one ISA level
// (the test builds this file with -march=x86-64, x86-64-v3, x86-64-v4 and CONVBERT_CPU_CLONES empty),
// on float32 inputs read from a file, and writes the outputs to another file. Every call also runs
// the rows split in two at `split` and exits 3 when any bit differs from the one-call result.
//
//   harness depthwise IN OUT B S C K MASKED SPLIT     IN: x, weight, [mask (B, S)]   OUT: y
//   harness layernorm IN OUT R C EPS SKIP BETA BIAS SUM SPLIT
//                                                    IN: x, [skip], gamma, [beta], [bias]   OUT: y, [sum]
//   harness biasgelu IN OUT R C SPLIT                IN: x (R, C), bias (C)   OUT: y
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "add_layer_norm_kernel.h"
#include "bias_gelu_kernel.h"
#include "depthwise_conv_kernel.h"

namespace {

std::vector<float> read_all(const char* path) {
  std::vector<float> data;
  FILE* f = std::fopen(path, "rb");
  if (!f) return data;
  float buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, sizeof(float), 4096, f)) > 0) data.insert(data.end(), buffer, buffer + n);
  std::fclose(f);
  return data;
}

bool write_all(const char* path, const std::vector<float>& data) {
  FILE* f = std::fopen(path, "wb");
  if (!f) return false;
  const bool ok = std::fwrite(data.data(), sizeof(float), data.size(), f) == data.size();
  return std::fclose(f) == 0 && ok;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  return 2;
}

int depthwise(char** argv) {
  const int64_t B = std::atoll(argv[4]), S = std::atoll(argv[5]), C = std::atoll(argv[6]), K = std::atoll(argv[7]);
  const bool masked = std::atoi(argv[8]) != 0;
  const int64_t split = std::atoll(argv[9]);
  const std::vector<float> in = read_all(argv[2]);
  const size_t expected = static_cast<size_t>(B * S * C + C * K + (masked ? B * S : 0));
  if (in.size() != expected) {
    return fail("depthwise: input has " + std::to_string(in.size()) + " floats, expected " + std::to_string(expected));
  }
  const std::vector<float> taps = convbert::depthwise_conv_taps(in.data() + B * S * C, C, K);
  const std::vector<float> zeros(static_cast<size_t>(C), 0.0f);
  std::vector<float> whole(static_cast<size_t>(B * S * C)), parts(whole.size());
  convbert::DepthwiseConvArgs a;
  a.x = in.data();
  a.weight = in.data() + B * S * C;
  a.taps = taps.data();
  a.mask = masked ? in.data() + B * S * C + C * K : nullptr;
  a.zeros = zeros.data();
  a.shape = convbert::DepthwiseConvShape{B, S, C, K};
  auto run = [&](float* y, int64_t begin, int64_t end) {
    a.y = y;
    if (K == 9) {
      convbert::depthwise_conv_rows<9>(a, begin, end);
    } else {
      convbert::depthwise_conv_rows<0>(a, begin, end);
    }
  };
  run(whole.data(), 0, B * S);
  run(parts.data(), 0, split);
  run(parts.data(), split, B * S);
  if (std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)) != 0) return 3;
  return write_all(argv[3], whole) ? 0 : fail("depthwise: cannot write the output");
}

int layernorm(char** argv) {
  const int64_t R = std::atoll(argv[4]), C = std::atoll(argv[5]);
  const float eps = std::strtof(argv[6], nullptr);
  const bool skip = std::atoi(argv[7]) != 0, beta = std::atoi(argv[8]) != 0, bias = std::atoi(argv[9]) != 0;
  const bool sum = std::atoi(argv[10]) != 0;
  const int64_t split = std::atoll(argv[11]);
  const std::vector<float> in = read_all(argv[2]);
  const size_t expected = static_cast<size_t>(R * C * (skip ? 2 : 1) + C * (1 + beta + bias));
  if (in.size() != expected) {
    return fail("layernorm: input has " + std::to_string(in.size()) + " floats, expected " + std::to_string(expected));
  }
  const std::vector<float> zeros(static_cast<size_t>(C), 0.0f);
  const float* next = in.data();
  convbert::AddLayerNormArgs a;
  a.x = next;
  next += R * C;
  a.skip = skip ? next : zeros.data();
  a.skip_stride = skip ? C : 0;
  next += skip ? R * C : 0;
  a.gamma = next;
  next += C;
  a.beta = beta ? next : zeros.data();
  next += beta ? C : 0;
  a.bias = bias ? next : zeros.data();
  a.channels = C;
  a.epsilon = eps;
  std::vector<float> whole(static_cast<size_t>(R * C * (sum ? 2 : 1))), parts(whole.size());
  auto run = [&](std::vector<float>& out, int64_t begin, int64_t end) {
    a.y = out.data();
    a.sum = sum ? out.data() + R * C : nullptr;
    convbert::add_layer_norm_rows(a, begin, end);
  };
  run(whole, 0, R);
  run(parts, 0, split);
  run(parts, split, R);
  if (std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)) != 0) return 3;
  return write_all(argv[3], whole) ? 0 : fail("layernorm: cannot write the output");
}

int biasgelu(char** argv) {
  const int64_t R = std::atoll(argv[4]), C = std::atoll(argv[5]), split = std::atoll(argv[6]);
  const std::vector<float> in = read_all(argv[2]);
  const size_t expected = static_cast<size_t>(R * C + C);
  if (in.size() != expected) {
    return fail("biasgelu: input has " + std::to_string(in.size()) + " floats, expected " + std::to_string(expected));
  }
  std::vector<float> whole(static_cast<size_t>(R * C)), parts(whole.size());
  convbert::bias_gelu_rows(in.data(), in.data() + R * C, whole.data(), C, 0, R);
  convbert::bias_gelu_rows(in.data(), in.data() + R * C, parts.data(), C, 0, split);
  convbert::bias_gelu_rows(in.data(), in.data() + R * C, parts.data(), C, split, R);
  if (std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)) != 0) return 3;
  return write_all(argv[3], whole) ? 0 : fail("biasgelu: cannot write the output");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 10 && std::strcmp(argv[1], "depthwise") == 0) return depthwise(argv);
  if (argc == 12 && std::strcmp(argv[1], "layernorm") == 0) return layernorm(argv);
  if (argc == 7 && std::strcmp(argv[1], "biasgelu") == 0) return biasgelu(argv);
  return fail("usage: see the comment at the top of cpu_kernels_harness.cc");
}
