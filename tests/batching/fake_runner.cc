#include "tests/batching/fake_runner.h"

#include <algorithm>
#include <utility>

namespace audiotag::testing {
namespace {

constexpr int64_t kTagsPerRequest = 10000;

class FakeRunner : public BatchRunner {
 public:
  explicit FakeRunner(std::shared_ptr<FakeModel> model)
      : model_(std::move(model)) {}
  absl::StatusOr<std::vector<Tensor>> Run(Tensor batch) override {
    return model_->Run(batch);
  }

 private:
  std::shared_ptr<FakeModel> model_;
};

std::vector<Tensor> Compute(const Tensor& batch) {
  const int64_t rows = batch.shape[0];
  const int64_t row_size = batch.data.size() / rows;
  Tensor doubled{batch.shape, batch.data};
  for (float& x : doubled.data) x *= 2;
  Tensor row_index{{rows, 1}, {}};
  Tensor tags{{rows}, {}};
  for (int64_t r = 0; r < rows; ++r) {
    row_index.data.push_back(static_cast<float>(r));
    tags.data.push_back(batch.data[r * row_size]);
  }
  return {std::move(doubled), std::move(row_index), std::move(tags)};
}

}  // namespace

Tensor Segment(float tag) { return Tensor{{2}, {tag, 0.5f}}; }

float Tag(uint64_t id, int64_t index) {
  return static_cast<float>(id * kTagsPerRequest + index);
}

uint64_t TagRequest(float tag) {
  return static_cast<uint64_t>(tag) / kTagsPerRequest;
}

std::shared_ptr<FakeModel> FakeModel::Create() {
  return std::shared_ptr<FakeModel>(new FakeModel());
}

std::vector<std::unique_ptr<BatchRunner>> FakeModel::NewRunners(int count) {
  std::vector<std::unique_ptr<BatchRunner>> runners;
  for (int i = 0; i < count; ++i) {
    runners.push_back(std::make_unique<FakeRunner>(shared_from_this()));
  }
  return runners;
}

void FakeModel::CloseGate() {
  absl::MutexLock lock(&mu_);
  gate_open_ = false;
}

void FakeModel::OpenGate() {
  absl::MutexLock lock(&mu_);
  gate_open_ = true;
}

void FakeModel::FailWith(absl::Status status) {
  absl::MutexLock lock(&mu_);
  fail_with_ = std::move(status);
}

void FakeModel::RequireConcurrency(int count) {
  absl::MutexLock lock(&mu_);
  required_concurrency_ = count;
}

bool FakeModel::WaitForRunsStarted(int count) {
  absl::MutexLock lock(&mu_);
  auto started = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<int>(batches_.size()) >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&started), kWait);
}

std::vector<std::vector<float>> FakeModel::batches() const {
  absl::MutexLock lock(&mu_);
  return batches_;
}

int64_t FakeModel::rows_run() const {
  absl::MutexLock lock(&mu_);
  return rows_run_;
}

int FakeModel::max_in_flight() const {
  absl::MutexLock lock(&mu_);
  return max_in_flight_;
}

bool FakeModel::MayFinish() const {
  return gate_open_ && max_in_flight_ >= required_concurrency_;
}

absl::Status FakeModel::Admit(const Tensor& batch) {
  const int64_t rows = batch.shape[0];
  const int64_t row_size = batch.data.size() / rows;
  absl::MutexLock lock(&mu_);
  std::vector<float>& tags = batches_.emplace_back();
  for (int64_t r = 0; r < rows; ++r) tags.push_back(batch.data[r * row_size]);
  rows_run_ += rows;
  max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
  mu_.AwaitWithTimeout(absl::Condition(this, &FakeModel::MayFinish), kWait);
  --in_flight_;
  return fail_with_;
}

absl::StatusOr<std::vector<Tensor>> FakeModel::Run(const Tensor& batch) {
  if (absl::Status status = Admit(batch); !status.ok()) return status;
  return Compute(batch);
}

}  // namespace audiotag::testing
