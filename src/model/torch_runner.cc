#include "src/model/torch_runner.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include "absl/time/clock.h"

#include <cstring>
#include <exception>
#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/common/status_macros.h"
#include "src/features/front_end.h"
#include "src/model/model_config.h"
#include "src/model/output_kind.h"

namespace audiotag {
namespace {

std::string ShapeOf(const at::Tensor& t) {
  return "[" + absl::StrJoin(t.sizes(), ", ") + "]";
}

absl::StatusOr<torch::Device> ToDevice(const std::string& device) {
  ASSIGN_OR_RETURN(DeviceSpec spec, ParseDevice(device));
  if (!spec.cuda) return torch::Device(torch::kCPU);
  if (!torch::cuda::is_available()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "instances.device is '", device,
        "' but CUDA is not available (CPU-only LibTorch build or no visible "
        "GPU)"));
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  const int index = spec.index < 0 ? 0 : spec.index;
  if (index >= count) {
    return absl::FailedPreconditionError(
        absl::StrCat("instances.device is '", device, "' but only ", count,
                     " CUDA device(s) are visible"));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

// Picks the IValue an OutputConfig.source names out of what forward returned.
absl::StatusOr<at::Tensor> SelectOutput(const c10::IValue& result,
                                        const v1::OutputConfig& output) {
  const std::string& source = output.source();
  auto as_tensor = [&](const c10::IValue& v) -> absl::StatusOr<at::Tensor> {
    if (!v.isTensor()) {
      return absl::InternalError(absl::StrCat("output '", output.name(),
                                              "' (source '", source, "') is a ",
                                              v.tagKind(), ", not a Tensor"));
    }
    return v.toTensor();
  };
  if (result.isTensor()) {
    if (!source.empty() && source != "0") {
      return absl::InternalError(absl::StrCat(
          "output '", output.name(), "' has source '", source,
          "' but the model returns a single Tensor (use source \"\")"));
    }
    return result.toTensor();
  }
  if (result.isTuple() || result.isList()) {
    const std::vector<c10::IValue> items =
        result.isTuple() ? result.toTupleRef().elements().vec()
                         : result.toListRef().vec();
    int index = -1;
    if (!absl::SimpleAtoi(source, &index) || index < 0 ||
        index >= static_cast<int>(items.size())) {
      return absl::InternalError(absl::StrCat(
          "output '", output.name(), "' has source '", source,
          "' but the model returns a ", result.tagKind(), " of ", items.size(),
          " (use an index 0..", items.size() - 1, ")"));
    }
    return as_tensor(items[index]);
  }
  if (result.isGenericDict()) {
    const c10::Dict<c10::IValue, c10::IValue> dict = result.toGenericDict();
    std::vector<std::string> keys;
    for (const auto& entry : dict) {
      if (entry.key().isString() && entry.key().toStringRef() == source) {
        return as_tensor(entry.value());
      }
      if (entry.key().isString()) keys.push_back(entry.key().toStringRef());
    }
    return absl::InternalError(absl::StrCat(
        "output '", output.name(), "' has source '", source,
        "' but the model's dict has keys: ", absl::StrJoin(keys, ", ")));
  }
  return absl::InternalError(absl::StrCat("the model returns a ",
                                          result.tagKind(),
                                          "; expected a Tensor, a tuple/list "
                                          "or a Dict[str, Tensor]"));
}

absl::Status CheckOutputShape(const at::Tensor& t, int64_t batch,
                              const v1::OutputConfig& output) {
  const OutputKindTraits* kind = FindOutputKind(output.kind());
  if (kind == nullptr) {
    return absl::InternalError(
        absl::StrCat("output '", output.name(), "' has kind ", output.kind(),
                     ", not one of ", OutputKindNames()));
  }
  if (AcceptsRank(*kind, t.dim()) && t.size(0) == batch &&
      t.size(t.dim() - 1) == output.dim()) {
    return absl::OkStatus();
  }
  return absl::InternalError(absl::StrCat(
      "output '", output.name(), "' has shape ", ShapeOf(t),
      "; the config expects ", ExpectedShapes(*kind, batch, output.dim())));
}

Tensor ToHost(const at::Tensor& t) {
  const at::Tensor cpu = t.to(torch::kCPU, torch::kFloat).contiguous();
  Tensor out;
  out.shape.assign(cpu.sizes().begin(), cpu.sizes().end());
  out.data.resize(cpu.numel());
  if (!out.data.empty()) {
    std::memcpy(out.data.data(), cpu.data_ptr<float>(),
                out.data.size() * sizeof(float));
  }
  return out;
}

}  // namespace

struct TorchRunner::Impl {
  v1::ModelConfig config;
  std::string model_path;
  // Per-segment input shape; empty = unknown (stages only).
  std::vector<int64_t> input_shape;
  bool stage = false;
  std::vector<std::vector<int64_t>> output_shapes;
  torch::Device device{torch::kCPU};
  std::string device_name;
  std::unique_ptr<FrontEnd> front_end;
  torch::jit::Module module;
  // Per output, OutputConfig.calibration as [dim] tensors on `device`;
  // undefined where the config has none.
  std::vector<at::Tensor> calibration_scale;
  std::vector<at::Tensor> calibration_bias;

  void PrepareCalibration();

  // `batch` is the caller's to lose: on CPU the model reads (and may
  // overwrite) its storage directly.
  absl::StatusOr<std::vector<Tensor>> Forward(Tensor& batch);
  absl::Status CheckBatch(const Tensor& batch) const;
  absl::StatusOr<std::vector<Tensor>> ForwardUnguarded(Tensor& batch);
  absl::Status Warmup();

  // Host time of the last front-end call (on CUDA, the time to queue it).
  absl::Duration last_frontend;
};

void TorchRunner::Impl::PrepareCalibration() {
  auto to_tensor = [this](const google::protobuf::RepeatedField<float>& v) {
    if (v.empty()) return at::Tensor();
    return torch::tensor(std::vector<float>(v.begin(), v.end()),
                         torch::TensorOptions().dtype(torch::kFloat))
        .to(device);
  };
  calibration_scale.clear();
  calibration_bias.clear();
  for (const v1::OutputConfig& output : config.output()) {
    calibration_scale.push_back(to_tensor(output.calibration().scale()));
    calibration_bias.push_back(to_tensor(output.calibration().bias()));
  }
}

absl::StatusOr<std::vector<Tensor>> TorchRunner::Impl::ForwardUnguarded(
    Tensor& batch) {
  c10::InferenceMode inference_mode;
  const int64_t b = batch.shape[0];
  // The batch's own storage: no copy on CPU, one host-to-device copy on
  // CUDA. `batch` outlives every use of `input` in this function.
  at::Tensor input =
      torch::from_blob(batch.data.data(), batch.shape,
                       torch::TensorOptions().dtype(torch::kFloat));
  if (!device.is_cpu()) input = input.to(device);
  at::Tensor features = input;
  if (!stage) {
    const absl::Time frontend_start = absl::Now();
    features = front_end->Forward(input);
    last_frontend = absl::Now() - frontend_start;
  }
  const c10::IValue result = module.forward({features});

  std::vector<Tensor> outputs;
  outputs.reserve(config.output_size());
  for (const v1::OutputConfig& output : config.output()) {
    ASSIGN_OR_RETURN(at::Tensor t, SelectOutput(result, output));
    RETURN_IF_ERROR(CheckOutputShape(t, b, output));
    const size_t index = outputs.size();
    if (calibration_scale[index].defined() ||
        calibration_bias[index].defined()) {
      t = t.to(torch::kFloat);  // the [dim] vectors broadcast on the last axis
      if (calibration_scale[index].defined()) t = t * calibration_scale[index];
      if (calibration_bias[index].defined()) t = t + calibration_bias[index];
    }
    if (output.activation() == v1::ACTIVATION_SIGMOID) {
      t = torch::sigmoid(t.to(torch::kFloat));
    } else if (output.activation() == v1::ACTIVATION_SOFTMAX) {
      t = torch::softmax(t.to(torch::kFloat), /*dim=*/-1);
    }
    outputs.push_back(ToHost(t));
  }
  return outputs;
}

absl::Status TorchRunner::Impl::CheckBatch(const Tensor& batch) const {
  const bool rank_ok = input_shape.empty()
                           ? batch.shape.size() >= 2
                           : batch.shape.size() == input_shape.size() + 1;
  bool ok = rank_ok && batch.shape[0] >= 1 &&
            static_cast<int64_t>(batch.data.size()) == batch.NumElements();
  for (size_t i = 0; ok && i < input_shape.size(); ++i) {
    ok = batch.shape[i + 1] == input_shape[i];
  }
  if (ok) return absl::OkStatus();
  const std::string expected =
      input_shape.empty()
          ? "[B, ...]"
          : absl::StrCat("[B, ", absl::StrJoin(input_shape, ", "), "]");
  return absl::InvalidArgumentError(absl::StrCat(
      "model ", config.name(), ": batch has shape ", batch.ShapeString(),
      " with ", batch.data.size(), " values; expected ", expected));
}

absl::StatusOr<std::vector<Tensor>> TorchRunner::Impl::Forward(Tensor& batch) {
  RETURN_IF_ERROR(CheckBatch(batch));
  absl::StatusOr<std::vector<Tensor>> outputs;
  try {
    outputs = ForwardUnguarded(batch);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("model ", config.name(),
                     " forward failed: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("model ", config.name(), " forward failed: ", e.what()));
  }
  if (!outputs.ok()) {
    return absl::Status(outputs.status().code(),
                        absl::StrCat("model ", config.name(), ": ",
                                     outputs.status().message()));
  }
  return outputs;
}

absl::Status TorchRunner::Impl::Warmup() {
  if (input_shape.empty()) return absl::OkStatus();
  std::vector<int64_t> sizes = {config.batching().max_batch_size()};
  if (sizes[0] != 1) sizes.push_back(1);
  for (int i = 0; i < config.warmup_batches(); ++i) {
    for (int64_t b : sizes) {
      Tensor zeros;
      zeros.shape = {b};
      zeros.shape.insert(zeros.shape.end(), input_shape.begin(),
                         input_shape.end());
      zeros.data.assign(zeros.NumElements(), 0.0f);
      absl::StatusOr<std::vector<Tensor>> out = Forward(zeros);
      if (!out.ok()) {
        return absl::Status(
            out.status().code(),
            absl::StrCat(model_path, ": warm-up at batch size ", b,
                         " failed: ", out.status().message()));
      }
      output_shapes.clear();
      for (const Tensor& t : *out) {
        output_shapes.emplace_back(t.shape.begin() + 1, t.shape.end());
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TorchRunner>> TorchRunner::Create(
    const v1::ModelConfig& config, const std::string& model_path) {
  std::vector<int64_t> input_shape;
  if (!IsStage(config)) input_shape = {config.segment().window_samples()};
  return Create(config, model_path, std::move(input_shape));
}

absl::StatusOr<std::unique_ptr<TorchRunner>> TorchRunner::Create(
    const v1::ModelConfig& config, const std::string& model_path,
    std::vector<int64_t> input_shape) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->model_path = model_path;
  impl->stage = IsStage(config);
  impl->input_shape = std::move(input_shape);
  ASSIGN_OR_RETURN(impl->device, ToDevice(config.instances().device()));
  impl->device_name = impl->device.str();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(model_path, ec)) {
    return absl::NotFoundError(absl::StrCat(model_path, ": not found"));
  }
  if (!impl->stage) {
    ASSIGN_OR_RETURN(impl->front_end, FrontEnd::Create(config.input()));
  }
  try {
    impl->module = torch::jit::load(model_path, impl->device);
    impl->module.eval();
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        model_path,
        ": not a loadable TorchScript model: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        model_path, ": not a loadable TorchScript model: ", e.what()));
  }
  impl->PrepareCalibration();
  RETURN_IF_ERROR(impl->Warmup());
  return std::unique_ptr<TorchRunner>(new TorchRunner(std::move(impl)));
}

TorchRunner::TorchRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TorchRunner::~TorchRunner() = default;

absl::StatusOr<std::vector<Tensor>> TorchRunner::Run(Tensor batch) {
  return impl_->Forward(batch);
}

absl::Duration TorchRunner::last_frontend_time() const {
  return impl_->last_frontend;
}

const std::vector<std::vector<int64_t>>& TorchRunner::output_shapes() const {
  return impl_->output_shapes;
}

const std::string& TorchRunner::device() const { return impl_->device_name; }

void SetProcessIntraOpThreads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

bool CudaAvailable() { return torch::cuda::is_available(); }

}  // namespace audiotag
