#include "client/bench_metrics.h"

#include <curl/curl.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace audiotag {
namespace {

bool ParseValue(absl::string_view text, double* value) {
  text = absl::StripAsciiWhitespace(text);
  if (text == "+Inf" || text == "Inf") {
    *value = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-Inf") {
    *value = -std::numeric_limits<double>::infinity();
    return true;
  }
  return absl::SimpleAtod(text, value);
}

// Parses `{a="x",b="y"}` (without the braces) into a map. Handles escaped
// quotes and backslashes inside values.
bool ParseLabels(absl::string_view text,
                 std::map<std::string, std::string>* labels) {
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ',' || text[i] == ' ')) ++i;
    if (i >= text.size()) break;
    const size_t eq = text.find('=', i);
    if (eq == absl::string_view::npos || eq + 1 >= text.size() ||
        text[eq + 1] != '"') {
      return false;
    }
    const std::string name(absl::StripAsciiWhitespace(text.substr(i, eq - i)));
    std::string value;
    size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\' && j + 1 < text.size()) {
        ++j;
        value.push_back(text[j] == 'n' ? '\n' : text[j]);
      } else {
        value.push_back(text[j]);
      }
    }
    if (j >= text.size()) return false;
    (*labels)[name] = std::move(value);
    i = j + 1;
  }
  return true;
}

// Splits one sample line into metric name, labels and value.
bool ParseSample(absl::string_view line, absl::string_view* name,
                 std::map<std::string, std::string>* labels, double* value) {
  const size_t brace = line.find('{');
  absl::string_view rest;
  if (brace != absl::string_view::npos) {
    const size_t close = line.rfind('}');
    if (close == absl::string_view::npos || close < brace) return false;
    *name = line.substr(0, brace);
    if (!ParseLabels(line.substr(brace + 1, close - brace - 1), labels)) {
      return false;
    }
    rest = line.substr(close + 1);
  } else {
    const size_t space = line.find_first_of(" \t");
    if (space == absl::string_view::npos) return false;
    *name = line.substr(0, space);
    rest = line.substr(space);
  }
  // The value, then an optional timestamp.
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::StripAsciiWhitespace(rest), ' ', absl::SkipEmpty());
  return !fields.empty() && ParseValue(fields[0], value);
}

// Body bytes HttpGet accepts; a /metrics page is a few hundred KiB at most.
constexpr size_t kMaxBody = size_t{64} << 20;

// libcurl's process-wide setup, done once before the first transfer.
bool InitCurl() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

struct CurlUrlFree {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
struct CurlFree {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct CurlSlistFree {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
struct CurlStringFree {
  void operator()(char* text) const { curl_free(text); }
};
using CurlString = std::unique_ptr<char, CurlStringFree>;

CurlString GetPart(CURLU* url, CURLUPart part, CURLUcode* rc) {
  char* text = nullptr;
  *rc = curl_url_get(url, part, &text, 0);
  return CurlString(text);
}

// The full http:// url of `text`, parsed by libcurl. A port is required; the
// path defaults to /metrics when `text` has none.
absl::StatusOr<std::string> MetricsUrl(absl::string_view text) {
  if (!InitCurl()) return absl::InternalError("libcurl did not initialize");
  const auto malformed = [text](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics url '", text, "' is not [http://]host:port[/path]: ", why));
  };
  std::unique_ptr<CURLU, CurlUrlFree> url(curl_url());
  if (url == nullptr) return absl::ResourceExhaustedError("curl_url failed");
  // libcurl's own default scheme is https; a bare host:port means http.
  const std::string full_text = absl::StrContains(text, "://")
                                    ? std::string(text)
                                    : absl::StrCat("http://", text);
  if (CURLUcode rc =
          curl_url_set(url.get(), CURLUPART_URL, full_text.c_str(), 0);
      rc != CURLUE_OK) {
    return malformed(curl_url_strerror(rc));
  }
  CURLUcode rc;
  CurlString scheme = GetPart(url.get(), CURLUPART_SCHEME, &rc);
  if (rc != CURLUE_OK || absl::string_view(scheme.get()) != "http") {
    return malformed("only http is supported");
  }
  CurlString port = GetPart(url.get(), CURLUPART_PORT, &rc);
  if (rc != CURLUE_OK) return malformed("no port");
  absl::string_view rest = text;
  absl::ConsumePrefix(&rest, "http://");
  if (!absl::StrContains(rest, '/') &&
      curl_url_set(url.get(), CURLUPART_PATH, "/metrics", 0) != CURLUE_OK) {
    return malformed("cannot set the path");
  }
  CurlString full = GetPart(url.get(), CURLUPART_URL, &rc);
  if (rc != CURLUE_OK) return malformed(curl_url_strerror(rc));
  return std::string(full.get());
}

// What a transfer collects: the body (up to kMaxBody) and the status line.
struct Reply {
  std::string body;
  std::string status_line;
  bool too_large = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  Reply* reply = static_cast<Reply*>(user);
  const size_t n = size * count;
  if (reply->body.size() + n > kMaxBody) {
    reply->too_large = true;
    return 0;  // libcurl ends the transfer with CURLE_WRITE_ERROR
  }
  reply->body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  Reply* reply = static_cast<Reply*>(user);
  const absl::string_view line(data, size * count);
  // The status line of the last response (libcurl passes every header line).
  if (absl::StartsWith(line, "HTTP/")) {
    reply->status_line = std::string(absl::StripTrailingAsciiWhitespace(line));
  }
  return size * count;
}

// Why a transfer failed, in words: what libcurl said, "malformed HTTP reply"
// first when the peer answered something that is not HTTP.
std::string TransferError(CURLcode rc, const char* detail) {
  std::string what = detail[0] != '\0' ? detail : curl_easy_strerror(rc);
  if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_WEIRD_SERVER_REPLY ||
      rc == CURLE_GOT_NOTHING) {
    return absl::StrCat("malformed HTTP reply (", what, ")");
  }
  return what;
}

}  // namespace

absl::StatusOr<HistogramsByLabel> ParseHistograms(absl::string_view text,
                                                  absl::string_view family,
                                                  absl::string_view label) {
  HistogramsByLabel out;
  const std::string bucket = absl::StrCat(family, "_bucket");
  const std::string sum = absl::StrCat(family, "_sum");
  const std::string count = absl::StrCat(family, "_count");
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#' || !absl::StartsWith(line, family)) {
      continue;
    }
    absl::string_view name;
    std::map<std::string, std::string> labels;
    double value = 0;
    const bool parsed = ParseSample(line, &name, &labels, &value);
    if (parsed && name != bucket && name != sum && name != count) continue;
    if (!parsed) {
      // A longer metric name that merely starts with `family` is not ours.
      if (!absl::StartsWith(line, bucket) && !absl::StartsWith(line, sum) &&
          !absl::StartsWith(line, count)) {
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics line ", line_number, ": cannot parse '", line, "'"));
    }
    auto it = labels.find(std::string(label));
    Histogram& h = out[it == labels.end() ? "" : it->second];
    if (name == sum) {
      h.sum += value;
    } else if (name == count) {
      h.count += value;
    } else {
      double le = 0;
      auto le_it = labels.find("le");
      if (le_it == labels.end() || !ParseValue(le_it->second, &le)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "metrics line ", line_number, ": bucket without a valid le"));
      }
      // Series that differ only in other labels add up.
      h.buckets[le] += value;
    }
  }
  return out;
}

HistogramsByLabel HistogramDelta(const HistogramsByLabel& after,
                                 const HistogramsByLabel& before) {
  HistogramsByLabel out;
  for (const auto& [key, a] : after) {
    Histogram d = a;
    auto it = before.find(key);
    if (it != before.end()) {
      d.sum -= it->second.sum;
      d.count -= it->second.count;
      for (auto& [le, n] : d.buckets) {
        auto b = it->second.buckets.find(le);
        if (b != it->second.buckets.end()) n -= b->second;
      }
    }
    out[key] = std::move(d);
  }
  return out;
}

std::map<double, double> BucketCounts(const Histogram& h) {
  std::map<double, double> out;
  double previous = 0;
  for (const auto& [le, cumulative] : h.buckets) {
    out[le] = cumulative - previous;
    previous = cumulative;
  }
  return out;
}

absl::StatusOr<std::string> HttpGet(absl::string_view url_text,
                                    absl::Duration timeout) {
  absl::StatusOr<std::string> url = MetricsUrl(url_text);
  if (!url.ok()) return url.status();
  const auto unavailable = [&url](absl::string_view what) {
    return absl::UnavailableError(absl::StrCat(*url, ": ", what));
  };
  std::unique_ptr<CURL, CurlFree> curl(InitCurl() ? curl_easy_init() : nullptr);
  if (curl == nullptr) return unavailable("cannot start libcurl");
  std::unique_ptr<curl_slist, CurlSlistFree> headers(
      curl_slist_append(nullptr, "Accept: text/plain"));
  Reply reply;
  char error[CURL_ERROR_SIZE] = "";
  const long timeout_ms =
      std::max<long>(1, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url->c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_0);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &reply);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  if (CURLcode rc = curl_easy_perform(c); rc != CURLE_OK) {
    if (reply.too_large) {
      return unavailable(
          absl::StrCat("reply larger than ", kMaxBody >> 20, " MiB"));
    }
    return unavailable(TransferError(rc, error));
  }
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    return unavailable(absl::StrCat("HTTP reply '", reply.status_line, "'"));
  }
  return std::move(reply.body);
}

absl::StatusOr<HistogramsByLabel> ReadHistograms(absl::string_view url,
                                                 absl::string_view family,
                                                 absl::string_view label,
                                                 absl::Duration timeout) {
  absl::StatusOr<std::string> text = HttpGet(url, timeout);
  if (!text.ok()) return text.status();
  absl::StatusOr<HistogramsByLabel> histograms =
      ParseHistograms(*text, family, label);
  if (!histograms.ok()) {
    return absl::Status(histograms.status().code(),
                        absl::StrCat(url, ": ", histograms.status().message()));
  }
  return histograms;
}

}  // namespace audiotag
