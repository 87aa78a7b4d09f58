#ifndef AUDIOTAG_CLIENT_FEWSHOT_HEAD_MODULE_H_
#define AUDIOTAG_CLIENT_FEWSHOT_HEAD_MODULE_H_

// The few-shot head as a TorchScript module. LibTorch stays inside
// head_module.cc; this header is plain C++.

#include <string>

#include "absl/status/status.h"
#include "client/fewshot/fewshot_fit.h"

namespace audiotag::fewshot {

// Writes `head` to `path` as a scripted module (buffers `center` [D],
// `weight` [K, D], `bias` [K]) whose forward maps embeddings [B, D] to
// logits [B, K] = normalize(x - center) weight^T + bias (float32; the server
// applies the sigmoid or softmax named in config.pbtxt), returned twice as a
// tuple (clip tags, activations). For a frame-wise embedding [B, T, D] the
// activations are per frame, [B, T, K], and the tags their mean over
// frames, [B, K]. The saved file is
// loaded back and checked against Score() on the head's own centre and a
// perturbed copy of it; INTERNAL on any LibTorch error or mismatch.
absl::Status SaveHeadModule(const Head& head, const std::string& path);

}  // namespace audiotag::fewshot

#endif  // AUDIOTAG_CLIENT_FEWSHOT_HEAD_MODULE_H_
