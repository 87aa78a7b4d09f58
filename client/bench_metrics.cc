#include "client/bench_metrics.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/cleanup/cleanup.h"
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

struct Url {
  std::string host;
  std::string port;
  std::string path;
};

absl::StatusOr<Url> ParseUrl(absl::string_view url) {
  absl::ConsumePrefix(&url, "http://");
  Url out;
  const size_t slash = url.find('/');
  out.path = slash == absl::string_view::npos ? "/metrics"
                                              : std::string(url.substr(slash));
  absl::string_view authority = url.substr(0, slash);
  const size_t colon = authority.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 ||
      colon + 1 == authority.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics url '", url, "' is not host:port[/path]"));
  }
  out.host = std::string(authority.substr(0, colon));
  out.port = std::string(authority.substr(colon + 1));
  if (out.host.size() > 2 && out.host.front() == '[') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  return out;
}

absl::Status Unavailable(const Url& url, absl::string_view what) {
  return absl::UnavailableError(
      absl::StrCat("http://", url.host, ":", url.port, url.path, ": ", what));
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
  absl::StatusOr<Url> url = ParseUrl(url_text);
  if (!url.ok()) return url.status();

  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  if (int rc =
          getaddrinfo(url->host.c_str(), url->port.c_str(), &hints, &addresses);
      rc != 0) {
    return Unavailable(*url, gai_strerror(rc));
  }
  absl::Cleanup free_addresses = [addresses] { freeaddrinfo(addresses); };

  const timeval tv = absl::ToTimeval(timeout);
  int fd = -1;
  std::string error = "no address";
  for (addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    // On Linux SO_SNDTIMEO also bounds connect().
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    error = std::strerror(errno);
    close(fd);
    fd = -1;
  }
  if (fd < 0) return Unavailable(*url, error);
  absl::Cleanup close_fd = [fd] { close(fd); };

  const std::string request =
      absl::StrCat("GET ", url->path, " HTTP/1.0\r\nHost: ", url->host,
                   "\r\nAccept: text/plain\r\n\r\n");
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n =
        send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return Unavailable(*url, std::strerror(errno));
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buffer[16384];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable(*url, std::strerror(errno));
    }
    reply.append(buffer, static_cast<size_t>(n));
  }
  const size_t header_end = reply.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    return Unavailable(*url, "malformed HTTP reply");
  }
  absl::string_view status_line =
      absl::string_view(reply).substr(0, reply.find("\r\n"));
  std::vector<absl::string_view> parts =
      absl::StrSplit(status_line, absl::MaxSplits(' ', 2));
  if (parts.size() < 2 || parts[1] != "200") {
    return Unavailable(*url, absl::StrCat("HTTP reply '", status_line, "'"));
  }
  return reply.substr(header_end + 4);
}

}  // namespace audiotag
