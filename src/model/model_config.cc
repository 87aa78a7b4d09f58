#include "src/model/model_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "src/common/status_macros.h"
#include "src/features/log_mel_config.h"
#include "src/model/output_kind.h"

namespace audiotag {
namespace {

constexpr int kMaxSampleRate = 384000;
constexpr int kDefaultMaxBatchSize = 8;
constexpr int64_t kDefaultMaxQueueDelayUs = 2000;
constexpr int64_t kDefaultMaxArrivalWaitUs = 20000;
constexpr int kDefaultMaxQueueSize = 4096;
constexpr int64_t kDefaultInteractiveWindowMs = 10000;
constexpr int kMaxInstances = 64;
constexpr char kDefaultLabelsFile[] = "labels.txt";

// Collects the parser's errors as "<file>:<line>:<column>: <message>", with
// 1-based lines and columns the way editors count them.
class CollectingErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  explicit CollectingErrorCollector(absl::string_view file_name)
      : file_name_(file_name) {}

  void AddError(int line, int column, const std::string& message) override {
    errors_.push_back(absl::StrCat(file_name_, ":", line + 1, ":", column + 1,
                                   ": ", message));
  }
  void AddWarning(int line, int column, const std::string& message) override {}

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  const std::string file_name_;
  std::vector<std::string> errors_;
};

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// Fills the log-mel defaults into the config (so Describe shows them) and
// leaves the checks to the front-end's own resolver, the one authority on
// what a log-mel front-end accepts.
absl::Status NormalizeLogMel(v1::InputConfig* input) {
  v1::LogMelFrontEnd* m = input->mutable_log_mel();
  if (m->win_length() == 0) m->set_win_length(m->n_fft());
  if (m->f_max() == 0) m->set_f_max(input->sample_rate() / 2.0f);
  if (!m->has_power()) m->set_power(2.0f);
  if (!m->has_norm_std()) m->set_norm_std(1.0f);
  if (input->layout() == v1::LAYOUT_DEFAULT) input->set_layout(v1::LAYOUT_BTF);
  return ResolveLogMelConfig(*input).status();
}

// A stage's timing and tensor layout are its root model's, so any of them
// set here would be silently ignored: reject them instead.
absl::Status NormalizeStageInput(const v1::ModelConfig& config) {
  const std::string& name = config.name();
  const v1::InputConfig& input = config.input();
  const std::vector<v1::ModelInput> sources = StageSources(config);
  if (sources.empty()) {
    return Invalid("input.from_models.source",
                   "needs at least one source model");
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    const v1::ModelInput& from = sources[i];
    const std::string field = StageSourceField(config, static_cast<int>(i));
    if (from.model().empty()) {
      return Invalid(absl::StrCat(field, ".model"), "is required");
    }
    if (from.model() == name) {
      return Invalid(
          absl::StrCat(field, ".model"),
          absl::StrCat("model '", name, "' cannot take its own output"));
    }
    if (from.output().empty()) {
      return Invalid(absl::StrCat(field, ".output"), "is required");
    }
    if (from.dim() < 0) {
      return Invalid(absl::StrCat(field, ".dim"),
                     absl::StrCat("must be >= 0, got ", from.dim()));
    }
    for (size_t j = 0; j < i; ++j) {
      if (sources[j].model() == from.model() &&
          sources[j].output() == from.output()) {
        return Invalid(field,
                       absl::StrCat("output '", from.output(), "' of model '",
                                    from.model(), "' is already source ", j));
      }
    }
  }
  if (input.sample_rate() != 0) {
    return Invalid("input.sample_rate",
                   "must be left out for a from_model stage (it inherits its "
                   "root model's rate)");
  }
  if (input.layout() != v1::LAYOUT_DEFAULT) {
    return Invalid("input.layout",
                   "must be left out for a from_model stage (it gets [B, "
                   "...source output shape])");
  }
  return absl::OkStatus();
}

absl::Status NormalizeInput(v1::InputConfig* input) {
  if (input->sample_rate() < 1 || input->sample_rate() > kMaxSampleRate) {
    return Invalid("input.sample_rate",
                   absl::StrCat("must be in 1..", kMaxSampleRate, " Hz, got ",
                                input->sample_rate()));
  }
  switch (input->front_end_case()) {
    case v1::InputConfig::kWaveform: {
      v1::WaveformFrontEnd* w = input->mutable_waveform();
      if (!w->has_gain()) w->set_gain(1.0f);
      const v1::TensorLayout l = input->layout();
      if (l == v1::LAYOUT_DEFAULT) input->set_layout(v1::LAYOUT_BT);
      if (l != v1::LAYOUT_DEFAULT && l != v1::LAYOUT_BT &&
          l != v1::LAYOUT_BCT) {
        return Invalid("input.layout",
                       absl::StrCat(v1::TensorLayout_Name(l),
                                    " is not a waveform layout (LAYOUT_BT or "
                                    "LAYOUT_BCT)"));
      }
      return absl::OkStatus();
    }
    case v1::InputConfig::kLogMel:
      return NormalizeLogMel(input);
    case v1::InputConfig::kFromModel:  // handled by NormalizeStageInput
    case v1::InputConfig::kFromModels:
    case v1::InputConfig::FRONT_END_NOT_SET:
      break;
  }
  return Invalid("input",
                 "needs a front-end: `waveform {}`, `log_mel {...}` or "
                 "`from_model {...}`");
}

absl::Status NormalizeSegment(v1::SegmentConfig* segment) {
  if (segment->window_samples() <= 0) {
    return Invalid("segment.window_samples",
                   absl::StrCat("must be > 0 (required), got ",
                                segment->window_samples()));
  }
  if (segment->hop_samples() == 0) {
    segment->set_hop_samples(segment->window_samples());
  }
  if (segment->hop_samples() < 0) {
    return Invalid("segment.hop_samples",
                   absl::StrCat("must be > 0, got ", segment->hop_samples()));
  }
  if (!v1::LastSegment_IsValid(segment->last_segment())) {
    return Invalid("segment.last_segment",
                   absl::StrCat("is not a known LastSegment (",
                                segment->last_segment(), ")"));
  }
  return absl::OkStatus();
}

// A calibration is empty or gives one finite value per class; scales are
// positive (a negative one would turn a class's ranking upside down).
absl::Status CheckCalibration(const v1::OutputConfig& out,
                              const OutputKindTraits& kind,
                              absl::string_view field) {
  if (!out.has_calibration()) return absl::OkStatus();
  const v1::Calibration& c = out.calibration();
  const std::string at = absl::StrCat(field, ".calibration");
  if (!kind.labelled) {
    return Invalid(at, absl::StrCat("output '", out.name(),
                                    "' is not a class score output; only "
                                    "TAGS and ACTIVATIONS are calibrated"));
  }
  struct Values {
    const char* name;
    const google::protobuf::RepeatedField<float>& values;
    bool positive;
  };
  for (const Values& v :
       {Values{"scale", c.scale(), true}, Values{"bias", c.bias(), false}}) {
    if (v.values.empty()) continue;
    if (v.values.size() != out.dim()) {
      return Invalid(absl::StrCat(at, ".", v.name),
                     absl::StrCat("has ", v.values.size(),
                                  " values; expected none or dim = ", out.dim(),
                                  " (one per class)"));
    }
    for (int k = 0; k < v.values.size(); ++k) {
      const float x = v.values[k];
      if (!std::isfinite(x) || (v.positive && x <= 0)) {
        return Invalid(
            absl::StrCat(at, ".", v.name, "[", k, "]"),
            absl::StrCat("must be ", v.positive ? "finite and > 0" : "finite",
                         ", got ", x));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status NormalizeOutputs(v1::ModelConfig* config) {
  if (config->output_size() == 0) {
    return Invalid("output", "a model needs at least one output");
  }
  std::set<std::string> names;
  for (int i = 0; i < config->output_size(); ++i) {
    v1::OutputConfig* out = config->mutable_output(i);
    const std::string field = absl::StrCat("output[", i, "]");
    if (out->name().empty()) return Invalid(field + ".name", "is required");
    if (!names.insert(out->name()).second) {
      return Invalid(field + ".name",
                     absl::StrCat("'", out->name(), "' is used twice"));
    }
    const OutputKindTraits* kind = FindOutputKind(out->kind());
    if (kind == nullptr) {
      return Invalid(
          field + ".kind",
          out->kind() == v1::OUTPUT_KIND_UNSPECIFIED
              ? absl::StrCat("output '", out->name(),
                             "' needs a kind: ", OutputKindNames())
              : absl::StrCat("output '", out->name(), "' has kind ",
                             out->kind(), ", not one of ", OutputKindNames()));
    }
    if (out->dim() <= 0) {
      return Invalid(field + ".dim",
                     absl::StrCat("output '", out->name(),
                                  "' needs dim > 0, got ", out->dim()));
    }
    RETURN_IF_ERROR(CheckCalibration(*out, *kind, field));
    if (kind->labelled && out->labels_file().empty()) {
      out->set_labels_file(kDefaultLabelsFile);
    }
    if (absl::StartsWith(out->labels_file(), "/") ||
        absl::StrContains(out->labels_file(), "..")) {
      return Invalid(field + ".labels_file",
                     "must be a path inside the model folder");
    }
  }
  return absl::OkStatus();
}

absl::Status NormalizeBatching(v1::BatchingConfig* b) {
  if (b->max_batch_size() == 0) b->set_max_batch_size(kDefaultMaxBatchSize);
  if (b->max_batch_size() < 0) {
    return Invalid("batching.max_batch_size",
                   absl::StrCat("must be > 0, got ", b->max_batch_size()));
  }
  int previous = 0;
  for (int size : b->preferred_batch_size()) {
    if (size <= previous || size > b->max_batch_size()) {
      return Invalid(
          "batching.preferred_batch_size",
          absl::StrCat("must be ascending, each in 1..", b->max_batch_size(),
                       "; got ",
                       absl::StrJoin(b->preferred_batch_size(), ", ")));
    }
    previous = size;
  }
  if (!b->has_max_queue_delay_us()) {
    b->set_max_queue_delay_us(kDefaultMaxQueueDelayUs);
  }
  if (b->max_queue_delay_us() < 0) {
    return Invalid("batching.max_queue_delay_us",
                   absl::StrCat("must be >= 0, got ", b->max_queue_delay_us()));
  }
  if (!b->has_bulk_batch_size_under_interactive()) {
    b->set_bulk_batch_size_under_interactive(
        std::max(1, b->max_batch_size() / 8));
  }
  if (b->bulk_batch_size_under_interactive() < 1 ||
      b->bulk_batch_size_under_interactive() > b->max_batch_size()) {
    return Invalid("batching.bulk_batch_size_under_interactive",
                   absl::StrCat("must be in 1..", b->max_batch_size(), ", got ",
                                b->bulk_batch_size_under_interactive()));
  }
  if (!b->has_interactive_window_ms()) {
    b->set_interactive_window_ms(kDefaultInteractiveWindowMs);
  }
  if (b->interactive_window_ms() < 0) {
    return Invalid(
        "batching.interactive_window_ms",
        absl::StrCat("must be >= 0, got ", b->interactive_window_ms()));
  }
  if (!b->has_max_arrival_wait_us()) {
    b->set_max_arrival_wait_us(kDefaultMaxArrivalWaitUs);
  }
  if (b->max_arrival_wait_us() < 0) {
    return Invalid(
        "batching.max_arrival_wait_us",
        absl::StrCat("must be >= 0, got ", b->max_arrival_wait_us()));
  }
  if (b->max_queue_size() == 0) b->set_max_queue_size(kDefaultMaxQueueSize);
  if (b->max_queue_size() < 0) {
    return Invalid("batching.max_queue_size",
                   absl::StrCat("must be > 0, got ", b->max_queue_size()));
  }
  return absl::OkStatus();
}

absl::Status NormalizeInstances(v1::InstanceConfig* inst) {
  if (inst->count() == 0) inst->set_count(1);
  if (inst->count() < 0 || inst->count() > kMaxInstances) {
    return Invalid(
        "instances.count",
        absl::StrCat("must be in 1..", kMaxInstances, ", got ", inst->count()));
  }
  if (inst->device().empty()) inst->set_device("cpu");
  if (absl::StatusOr<DeviceSpec> d = ParseDevice(inst->device()); !d.ok()) {
    return Invalid("instances.device", d.status().message());
  }
  if (inst->intra_op_threads() < 0) {
    return Invalid(
        "instances.intra_op_threads",
        absl::StrCat("must be >= 0, got ", inst->intra_op_threads()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::ModelConfig> ParseModelConfig(absl::string_view text,
                                                 absl::string_view file_name) {
  CollectingErrorCollector errors(file_name);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  v1::ModelConfig config;
  if (!parser.ParseFromString(std::string(text), &config)) {
    if (errors.errors().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_name, ": not a valid ModelConfig"));
    }
    return absl::InvalidArgumentError(absl::StrJoin(errors.errors(), "; "));
  }
  return config;
}

absl::StatusOr<v1::ModelConfig> ReadModelConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return ParseModelConfig(text.str(), path);
}

absl::Status NormalizeModelConfig(absl::string_view folder_name,
                                  v1::ModelConfig* config) {
  if (config->name().empty()) config->set_name(std::string(folder_name));
  if (config->name().empty()) return Invalid("name", "is required");
  if (!folder_name.empty() && config->name() != folder_name) {
    return Invalid("name", absl::StrCat("'", config->name(),
                                        "' must equal the folder name '",
                                        folder_name, "' (or be left out)"));
  }
  if (config->platform().empty()) config->set_platform("torchscript");
  if (config->platform() != "torchscript") {
    return Invalid("platform", absl::StrCat("'", config->platform(),
                                            "' is not supported; only "
                                            "'torchscript'"));
  }
  if (IsStage(*config)) {
    RETURN_IF_ERROR(NormalizeStageInput(*config));
    if (config->has_segment()) {
      return Invalid("segment",
                     "must be left out for a from_model stage (its segments "
                     "are its root model's)");
    }
  } else {
    RETURN_IF_ERROR(NormalizeInput(config->mutable_input()));
    RETURN_IF_ERROR(NormalizeSegment(config->mutable_segment()));
    if (config->segment().last_segment() == v1::LAST_SEGMENT_PAD_FEATURES &&
        !config->input().has_log_mel()) {
      return Invalid("segment.last_segment",
                     "LAST_SEGMENT_PAD_FEATURES pads log-mel frames and needs "
                     "a log_mel front-end (use LAST_SEGMENT_PAD for a "
                     "waveform model)");
    }
  }
  RETURN_IF_ERROR(NormalizeOutputs(config));
  RETURN_IF_ERROR(NormalizeBatching(config->mutable_batching()));
  RETURN_IF_ERROR(NormalizeInstances(config->mutable_instances()));
  if (config->version_policy().version() < 0) {
    return Invalid(
        "version_policy.version",
        absl::StrCat("must be >= 0, got ", config->version_policy().version()));
  }
  if (!config->has_warmup_batches()) config->set_warmup_batches(1);
  if (config->warmup_batches() < 0) {
    return Invalid("warmup_batches", absl::StrCat("must be >= 0, got ",
                                                  config->warmup_batches()));
  }
  return absl::OkStatus();
}

bool IsStage(const v1::ModelConfig& config) {
  return config.input().has_from_model() || config.input().has_from_models();
}

std::vector<v1::ModelInput> StageSources(const v1::ModelConfig& config) {
  if (config.input().has_from_model()) return {config.input().from_model()};
  if (!config.input().has_from_models()) return {};
  const auto& sources = config.input().from_models().source();
  return std::vector<v1::ModelInput>(sources.begin(), sources.end());
}

std::string StageSourceField(const v1::ModelConfig& config, int index) {
  if (config.input().has_from_model()) return "input.from_model";
  return absl::StrCat("input.from_models.source[", index, "]");
}

void InheritRootTiming(const v1::ModelConfig& source, v1::ModelConfig* stage) {
  stage->mutable_input()->set_sample_rate(source.input().sample_rate());
  *stage->mutable_segment() = source.segment();
}

absl::StatusOr<std::vector<std::string>> ReadLabels(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::vector<std::string> labels;
  std::string line;
  int blank_line = 0;  // first blank line seen, 1-based; 0 = none yet
  for (int n = 1; std::getline(in, line); ++n) {
    absl::string_view label = absl::StripAsciiWhitespace(line);
    if (label.empty()) {
      if (blank_line == 0) blank_line = n;
      continue;
    }
    if (blank_line != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", blank_line, ": empty label"));
    }
    labels.emplace_back(label);
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return labels;
}

absl::StatusOr<DeviceSpec> ParseDevice(absl::string_view device) {
  DeviceSpec spec;
  if (device == "cpu") return spec;
  if (device == "cuda") {
    spec.cuda = true;
    return spec;
  }
  absl::string_view index = device;
  if (absl::ConsumePrefix(&index, "cuda:") && !index.empty() &&
      absl::ascii_isdigit(index[0]) && absl::SimpleAtoi(index, &spec.index)) {
    spec.cuda = true;
    return spec;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "'", device, "' is not a device; use \"cpu\", \"cuda\" or \"cuda:N\""));
}

}  // namespace audiotag
