// libFuzzer target: arbitrary bytes as a serialized v1::AnalyzeRequest ->
// MakeAggregationOptions (the request validation the analyzer does before it
// touches a model) -> Aggregate over segment outputs taken from the request's
// audio bytes read as floats (NaN, Inf and denormals included), for a fixed
// model with TAGS, ACTIVATIONS and EMBEDDING outputs.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "audiotag/v1/audiotag.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "src/analysis/aggregator.h"
#include "src/model/model.h"

namespace {

using ::audiotag::AggregationOptions;
using ::audiotag::Model;
using ::audiotag::SegmentSpan;
using ::audiotag::Tensor;

constexpr int64_t kWindow = 16000;
constexpr int64_t kDims[] = {3, 3, 4};  // tags, activations, embedding

const Model& FuzzModel() {
  static const Model* const model = [] {
    audiotag::v1::ModelConfig config;
    config.set_name("fuzz");
    config.mutable_input()->set_sample_rate(16000);
    config.mutable_segment()->set_window_samples(kWindow);
    config.mutable_segment()->set_hop_samples(kWindow / 2);
    const audiotag::v1::OutputKind kinds[] = {
        audiotag::v1::TAGS, audiotag::v1::ACTIVATIONS, audiotag::v1::EMBEDDING};
    for (int o = 0; o < 3; ++o) {
      audiotag::v1::OutputConfig* out = config.add_output();
      out->set_name("out" + std::to_string(o));
      out->set_kind(kinds[o]);
      out->set_dim(kDims[o]);
    }
    // Fewer labels than classes: the aggregator names the rest class_<i>.
    std::vector<std::vector<std::string>> labels = {{"a", "b"}, {"x"}, {}};
    return new Model(config, 1, std::move(labels), nullptr);
  }();
  return *model;
}

// Reads floats from `bytes` cyclically.
class FloatSource {
 public:
  explicit FloatSource(const std::string& bytes) : bytes_(bytes) {}
  float Next() {
    if (bytes_.size() < sizeof(float)) return 0.5f;
    const size_t at = pos_ % (bytes_.size() - sizeof(float) + 1);
    float f;
    std::memcpy(&f, bytes_.data() + at, sizeof f);
    pos_ = at + sizeof f;
    return f;
  }
  uint8_t Byte() {
    if (bytes_.empty()) return 0;
    const uint8_t b = static_cast<uint8_t>(bytes_[pos_ % bytes_.size()]);
    pos_ = (pos_ + 1) % bytes_.size();
    return b;
  }

 private:
  const std::string& bytes_;
  size_t pos_ = 0;
};

void CheckTags(const audiotag::v1::OutputResult& out,
               const AggregationOptions& options) {
  if (options.top_k >= 0 && out.tags_size() > options.top_k) std::abort();
  for (int i = 0; i < out.tags_size(); ++i) {
    const float score = out.tags(i).score();
    if (score < options.threshold) std::abort();
    if (i > 0 && !std::isnan(score) && !std::isnan(out.tags(i - 1).score()) &&
        score > out.tags(i - 1).score()) {
      std::abort();  // best first
    }
  }
}

}  // namespace

// Invalid UTF-8 in string fields is an expected parse failure: keep
// protobuf from logging every one.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  audiotag::v1::AnalyzeRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::StatusOr<AggregationOptions> options =
      audiotag::MakeAggregationOptions(request.options());
  if (!options.ok()) {
    if (options.status().code() != absl::StatusCode::kInvalidArgument) {
      std::abort();
    }
    return 0;
  }

  FloatSource source(request.audio());
  const int segments = source.Byte() % 6;
  std::vector<SegmentSpan> spans;
  std::vector<std::vector<Tensor>> outputs;
  for (int s = 0; s < segments; ++s) {
    spans.push_back({s * kWindow / 2, (source.Byte() * 251) % (kWindow + 1)});
    std::vector<Tensor> segment;
    for (int64_t dim : kDims) {
      const int frames = source.Byte() % 4;  // 0: a [dim] output
      Tensor t;
      t.shape = frames == 0 ? std::vector<int64_t>{dim}
                            : std::vector<int64_t>{frames, dim};
      t.data.resize(t.NumElements());
      for (float& x : t.data) x = source.Next();
      segment.push_back(std::move(t));
    }
    outputs.push_back(std::move(segment));
  }
  absl::StatusOr<audiotag::v1::ModelResult> result =
      audiotag::Aggregate(FuzzModel(), spans, outputs, *options);
  if (!result.ok()) std::abort();  // every shape above is a valid one
  for (const auto& out : result->outputs()) {
    if (out.kind() == audiotag::v1::TAGS) CheckTags(out, *options);
  }
  std::string wire;
  result->SerializeToString(&wire);
  return 0;
}
