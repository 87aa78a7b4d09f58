#include "client/bulk/manifest.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/audiotag_client.h"
#include "client/bulk/json_text.h"

namespace audiotag::bulk {
namespace {

namespace fs = std::filesystem;

enum class Format { kText, kCsv, kJsonl };

Format FormatOf(const std::string& file_name) {
  const std::string ext =
      absl::AsciiStrToLower(fs::path(file_name).extension().string());
  if (ext == ".jsonl" || ext == ".ndjson") return Format::kJsonl;
  if (ext == ".csv") return Format::kCsv;
  return Format::kText;
}

absl::Status LineError(const std::string& file, int line,
                       const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": ", what));
}

// Splits one CSV record; false on an unterminated quote.
bool SplitCsv(absl::string_view line, std::vector<std::string>* fields) {
  fields->assign(1, "");
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields->back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields->back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields->emplace_back();
    } else {
      fields->back() += c;
    }
  }
  return !quoted;
}

struct CsvColumns {
  int id = -1;
  int path = -1;
  size_t count = 0;
};

absl::StatusOr<CsvColumns> CsvHeader(absl::string_view line,
                                     const std::string& file) {
  std::vector<std::string> names;
  if (!SplitCsv(line, &names)) return LineError(file, 1, "unterminated quote");
  CsvColumns columns;
  columns.count = names.size();
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string name =
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(names[i]));
    if (name == "id") columns.id = static_cast<int>(i);
    if (name == "path") columns.path = static_cast<int>(i);
  }
  if (columns.path < 0) {
    return LineError(file, 1,
                     absl::StrCat("the header has no 'path' column (found: ",
                                  absl::StrJoin(names, ", "), ")"));
  }
  return columns;
}

absl::StatusOr<Track> CsvTrack(absl::string_view line, const CsvColumns& cols,
                               const std::string& file, int number) {
  std::vector<std::string> fields;
  if (!SplitCsv(line, &fields)) {
    return LineError(file, number, "unterminated quote");
  }
  if (fields.size() != cols.count) {
    return LineError(
        file, number,
        absl::StrCat("expected ", cols.count, " fields, got ", fields.size()));
  }
  Track track;
  track.path = fields[cols.path];
  if (cols.id >= 0) track.id = fields[cols.id];
  return track;
}

absl::StatusOr<Track> JsonTrack(absl::string_view line, const std::string& file,
                                int number) {
  absl::StatusOr<google::protobuf::Struct> object = ParseJsonObject(line);
  if (!object.ok()) {
    return LineError(file, number, std::string(object.status().message()));
  }
  Track track;
  track.path = StringField(*object, "path");
  track.id = StringField(*object, "id");
  if (track.path.empty()) {
    return LineError(file, number, "no \"path\" string");
  }
  if (track.id.empty() && object->fields().contains("id")) {
    return LineError(file, number, "\"id\" must be a string or an integer");
  }
  return track;
}

}  // namespace

absl::StatusOr<std::vector<Track>> ParseManifest(const std::string& text,
                                                 const std::string& file_name,
                                                 const std::string& base_dir) {
  const Format format = FormatOf(file_name);
  std::vector<Track> tracks;
  absl::flat_hash_map<std::string, int> id_line;
  CsvColumns columns;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    if (format == Format::kCsv && number == 1) {
      absl::StatusOr<CsvColumns> header = CsvHeader(line, file_name);
      if (!header.ok()) return header.status();
      columns = *header;
      continue;
    }
    absl::StatusOr<Track> track;
    if (format == Format::kJsonl) {
      track = JsonTrack(line, file_name, number);
    } else if (format == Format::kCsv) {
      track = CsvTrack(line, columns, file_name, number);
    } else {
      if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "#"))
        continue;
      track = Track{"", std::string(absl::StripAsciiWhitespace(line))};
    }
    if (!track.ok()) return track.status();
    if (track->path.empty()) return LineError(file_name, number, "empty path");
    if (!IsUtf8(track->path) || !IsUtf8(track->id)) {
      return LineError(file_name, number,
                       "the path or id is not valid UTF-8 (result lines are "
                       "JSON): save the manifest as UTF-8");
    }
    if (track->id.empty()) track->id = track->path;
    if (const auto [it, fresh] = id_line.emplace(track->id, number); !fresh) {
      return LineError(file_name, number,
                       absl::StrCat("id '", track->id,
                                    "' repeats the one on line ", it->second));
    }
    if (!base_dir.empty() && fs::path(track->path).is_relative()) {
      track->path = (fs::path(base_dir) / track->path).string();
    }
    tracks.push_back(*std::move(track));
  }
  return tracks;
}

absl::StatusOr<std::vector<Track>> ReadManifest(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseManifest(*text, path, fs::path(path).parent_path().string());
}

bool HasAudioExtension(const std::string& path) {
  static const auto* const kExtensions = new absl::flat_hash_set<std::string>{
      ".wav", ".wave", ".flac", ".mp3",  ".ogg", ".oga", ".opus", ".m4a",
      ".aac", ".wma",  ".aif",  ".aiff", ".au",  ".snd", ".webm", ".mka",
      ".mp4", ".mp2",  ".ac3",  ".amr",  ".caf", ".ape", ".wv",   ".alac"};
  return kExtensions->contains(
      absl::AsciiStrToLower(fs::path(path).extension().string()));
}

absl::StatusOr<std::vector<Track>> ListAudioFiles(const std::string& dir) {
  std::error_code error;
  fs::recursive_directory_iterator it(
      dir, fs::directory_options::follow_directory_symlink, error);
  if (error) {
    return absl::NotFoundError(
        absl::StrCat("cannot list '", dir, "': ", error.message()));
  }
  std::vector<Track> tracks;
  for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (error) break;
    if (!it->is_regular_file(error) || !HasAudioExtension(it->path())) continue;
    Track track{fs::relative(it->path(), dir).string(), it->path().string()};
    if (!IsUtf8(track.path)) {
      return absl::InvalidArgumentError(
          absl::StrCat("file name not valid UTF-8 (result lines are JSON): ",
                       JsonString(track.path),
                       "; rename it or list the others in a "
                       "manifest"));
    }
    tracks.push_back(std::move(track));
  }
  if (error) {
    return absl::InternalError(
        absl::StrCat("listing '", dir, "': ", error.message()));
  }
  std::sort(tracks.begin(), tracks.end(),
            [](const Track& a, const Track& b) { return a.id < b.id; });
  return tracks;
}

}  // namespace audiotag::bulk
