#include "client/fewshot/head_module.h"

#include <torch/script.h>

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"

namespace audiotag::fewshot {
namespace {

constexpr char kForward[] = R"(
def forward(self, x):
    z = x - self.center
    n = torch.clamp_min(torch.sqrt(torch.sum(z * z, -1, keepdim=True)), 1e-12)
    logits = torch.matmul(z / n, self.weight.t()) + self.bias
    if logits.dim() == 3:
        return torch.mean(logits, 1), logits
    return logits, logits
)";

torch::Tensor ToTensor(const std::vector<float>& v) {
  return torch::tensor(v, torch::kFloat32);
}

// Loads `path` back and compares its logits with Score() for two probes.
absl::Status Verify(const Head& head, const std::string& path) {
  torch::jit::Module loaded = torch::jit::load(path);
  loaded.eval();
  std::vector<float> probe = head.center;
  for (size_t d = 0; d < probe.size(); ++d)
    probe[d] += 0.1f * std::sin(static_cast<float>(d) + 1.0f);
  const torch::Tensor batch = ToTensor(probe).unsqueeze(0);
  const torch::Tensor logits = loaded.forward({batch})
                                   .toTuple()
                                   ->elements()[0]
                                   .toTensor()
                                   .contiguous()
                                   .to(torch::kFloat32);
  const std::vector<float> expected = Score(head, probe, /*exclusive=*/false);
  for (size_t k = 0; k < expected.size(); ++k) {
    const float got = 1.0f / (1.0f + std::exp(-logits[0][k].item<float>()));
    if (std::abs(got - expected[k]) > 1e-4) {
      return absl::InternalError(
          absl::StrCat("the saved head disagrees with the fitted one for tag ",
                       k, ": ", got, " vs ", expected[k]));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SaveHeadModule(const Head& head, const std::string& path) {
  try {
    const int64_t tags = head.weight.size();
    const int64_t dim = head.center.size();
    std::vector<float> flat;
    for (const std::vector<float>& row : head.weight)
      flat.insert(flat.end(), row.begin(), row.end());
    torch::jit::Module module("FewShotHead");
    module.register_buffer("center", ToTensor(head.center));
    module.register_buffer("weight", ToTensor(flat).reshape({tags, dim}));
    module.register_buffer("bias", ToTensor(head.bias));
    module.define(kForward);
    module.eval();
    module.save(path);
    return Verify(head, path);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("writing the TorchScript head: ",
                                            e.what_without_backtrace()));
  }
}

}  // namespace audiotag::fewshot
