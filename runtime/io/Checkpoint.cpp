//===- Checkpoint.cpp - Crash-safe training checkpoints -------------------===//
#include "io/Checkpoint.h"

#include "io/AtomicFile.h"
#include "io/FileUtil.h"
#include "io/Fnv1a.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

using nlohmann::json;

namespace dsflow::io {

static constexpr const char *kLatestFile = "latest";
static constexpr const char *kManifestFile = "manifest.json";
static constexpr const char *kModelFile = "model.safetensors";
static constexpr const char *kOptimizerFile = "optimizer.safetensors";
static constexpr const char *kFormatId = "dsflow-checkpoint";

std::string checkpointDirName(int64_t step) {
  return "step-" + std::to_string(step);
}

static std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016" PRIx64, value);
  return text;
}

/// The step named by "step-N" (digits only, no sign, fits in int64).
static std::optional<int64_t> parseStepName(const std::string &name) {
  const std::string prefix = "step-";
  if (name.size() <= prefix.size() || name.size() > prefix.size() + 18 ||
      name.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  int64_t step = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9')
      return std::nullopt;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

/// The step directory name `latest` holds, if it holds a valid one.
static Expected<std::string> readLatestName(const std::string &dir) {
  std::string path = joinPath(dir, kLatestFile);
  Expected<std::vector<uint8_t>> bytes = readWholeFile(path);
  if (!bytes)
    return bytes.error();
  std::string name(bytes->begin(), bytes->end());
  while (!name.empty() && (name.back() == '\n' || name.back() == ' '))
    name.pop_back();
  if (!parseStepName(name) || checkpointDirName(*parseStepName(name)) != name)
    return makeError(path,
                     "expected 'step-<N>', got '" + name.substr(0, 64) + "'");
  return name;
}

/// Removes temporaries that an interrupted save left in `dir`.
static void removeStaleTemporaries(const std::string &dir) {
  std::error_code ec;
  std::vector<std::string> stale;
  for (const auto &entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (isAtomicTempName(name))
      stale.push_back(joinPath(dir, name));
  }
  for (const std::string &path : stale)
    (void)removeTree(path);
}

static json fileEntry(const FileDigest &digest) {
  return json{{"bytes", digest.bytes}, {"fnv1a64", hex64(digest.fnv1a64)}};
}

/// Writes the three files of a checkpoint into `stepDir`.
static Status writeStep(const std::string &stepDir, int64_t step,
                        const std::vector<TensorRef> &model,
                        const std::vector<TensorRef> &optimizer,
                        const ResumeState &resume) {
  FileDigest modelDigest, optimizerDigest;
  // Hugging Face loaders require the "format" metadata.
  if (Status error = saveSafetensors(joinPath(stepDir, kModelFile), model,
                                     {{"format", "pt"}}, &modelDigest))
    return error;
  if (Status error =
          saveSafetensors(joinPath(stepDir, kOptimizerFile), optimizer,
                          {{"format", "dsflow-optimizer"}}, &optimizerDigest))
    return error;
  json manifest = {
      {"format", kFormatId},
      {"format_version", kCheckpointFormatVersion},
      {"step", step},
      {"data_position", resume.dataPosition},
      {"rng_state", resume.rngState},
      {"files",
       {{kModelFile, fileEntry(modelDigest)},
        {kOptimizerFile, fileEntry(optimizerDigest)}}},
  };
  std::string text;
  try {
    text = manifest.dump(2) + "\n";
  } catch (const json::exception &e) {
    return makeError(joinPath(stepDir, kManifestFile),
                     std::string("cannot encode the manifest: ") + e.what());
  }
  if (Status error =
          writeFileAtomically(joinPath(stepDir, kManifestFile), text))
    return error;
  return syncDirectory(stepDir);
}

Status saveCheckpoint(const std::string &dir, int64_t step,
                      const std::vector<TensorRef> &model,
                      const std::vector<TensorRef> &optimizer,
                      const ResumeState &resume) {
  if (step < 0)
    return makeError(dir, "checkpoint step " + std::to_string(step) +
                              " is negative");
  std::error_code ec;
  bool created = std::filesystem::create_directories(dir, ec);
  if (ec)
    return makeError(dir,
                     "cannot create checkpoint directory: " + ec.message());
  if (created)
    if (Status error = syncDirectory(parentDirectory(dir)))
      return error;
  removeStaleTemporaries(dir);

  std::string name = checkpointDirName(step);
  std::string finalDir = joinPath(dir, name);
  Expected<std::string> latest = readLatestName(dir);
  if (latest && *latest == name)
    return makeError(finalDir, "refusing to replace the latest checkpoint");

  std::string suffix = std::to_string(::getpid());
  std::string tempDir = joinPath(dir, ".tmp-" + name + "-" + suffix);
  if (::mkdir(tempDir.c_str(), 0755) != 0)
    return makeError(tempDir, "cannot create directory: " + errnoText(errno));
  if (Status error = writeStep(tempDir, step, model, optimizer, resume)) {
    (void)removeTree(tempDir);
    return error;
  }

  // A step-N that `latest` does not name is left from an earlier run: move it
  // aside, then drop it once the new one is in place.
  std::string oldDir;
  if (pathExists(finalDir)) {
    oldDir = joinPath(dir, ".tmp-old-" + name + "-" + suffix);
    if (::rename(finalDir.c_str(), oldDir.c_str()) != 0) {
      IoError error = makeError(finalDir, "cannot move the old checkpoint "
                                          "aside: " +
                                              errnoText(errno));
      (void)removeTree(tempDir);
      return error;
    }
  }
  if (::rename(tempDir.c_str(), finalDir.c_str()) != 0) {
    IoError error = makeError(finalDir, "cannot rename " + tempDir + ": " +
                                            errnoText(errno));
    (void)removeTree(tempDir);
    return error;
  }
  if (Status error = syncDirectory(dir))
    return error;
  if (!oldDir.empty())
    (void)removeTree(oldDir);
  return writeFileAtomically(joinPath(dir, kLatestFile), name + "\n");
}

Status rewindCheckpoint(const std::string &dir, int64_t step) {
  std::string name = checkpointDirName(step);
  if (!pathExists(joinPath(dir, name)))
    return makeError(joinPath(dir, name), "no such checkpoint to go back to");
  return writeFileAtomically(joinPath(dir, kLatestFile), name + "\n");
}

bool hasCheckpoint(const std::string &dir) {
  return pathExists(joinPath(dir, kLatestFile));
}

/// Reads a checkpoint file and checks it against its manifest entry.
static Expected<SafetensorsFile> loadVerified(const std::string &stepDir,
                                              const char *fileName,
                                              const json &files,
                                              const std::string &manifestPath) {
  auto entry = files.find(fileName);
  if (entry == files.end() || !entry->is_object() ||
      !entry->contains("bytes") || !(*entry)["bytes"].is_number_unsigned() ||
      !entry->contains("fnv1a64") || !(*entry)["fnv1a64"].is_string())
    return makeError(manifestPath, std::string("no valid entry for ") +
                                       fileName + " in 'files'");
  uint64_t bytes = (*entry)["bytes"].get<uint64_t>();
  std::string checksum = (*entry)["fnv1a64"].get<std::string>();

  std::string path = joinPath(stepDir, fileName);
  Expected<std::vector<uint8_t>> content = readWholeFile(path);
  if (!content)
    return content.error();
  if (content->size() != bytes)
    return makeError(path, "size " + std::to_string(content->size()) +
                               " differs from the manifest's " +
                               std::to_string(bytes) + " (truncated?)");
  std::string actual = hex64(fnv1a64(content->data(), content->size()));
  if (actual != checksum)
    return makeError(path, "checksum " + actual +
                               " differs from the "
                               "manifest's " +
                               checksum.substr(0, 16) + " (corrupted)");
  return SafetensorsFile::parse(std::move(*content), path);
}

Expected<Checkpoint> loadCheckpoint(const std::string &stepDir) {
  std::string manifestPath = joinPath(stepDir, kManifestFile);
  Expected<std::vector<uint8_t>> bytes = readWholeFile(manifestPath);
  if (!bytes)
    return bytes.error();
  json manifest = json::parse(bytes->begin(), bytes->end(), nullptr,
                              /*allow_exceptions=*/false);
  if (manifest.is_discarded() || !manifest.is_object())
    return makeError(manifestPath, "not a JSON object");
  auto field = [&](const char *key) -> const json * {
    auto it = manifest.find(key);
    return it == manifest.end() ? nullptr : &*it;
  };
  const json *format = field("format");
  if (!format || *format != kFormatId)
    return makeError(manifestPath,
                     std::string("'format' is not '") + kFormatId + "'");
  const json *version = field("format_version");
  if (!version || !version->is_number_integer())
    return makeError(manifestPath, "missing integer 'format_version'");
  if (*version != kCheckpointFormatVersion)
    return makeError(manifestPath,
                     "format version " + version->dump() +
                         " is not supported (this build reads " +
                         std::to_string(kCheckpointFormatVersion) + ")");
  const json *step = field("step");
  if (!step || !step->is_number_unsigned() ||
      step->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    return makeError(manifestPath, "missing non-negative integer 'step'");
  const json *dataPosition = field("data_position");
  const json *rngState = field("rng_state");
  if (!dataPosition || !dataPosition->is_string() || !rngState ||
      !rngState->is_string())
    return makeError(manifestPath,
                     "missing string 'data_position' or 'rng_state'");
  const json *files = field("files");
  if (!files || !files->is_object())
    return makeError(manifestPath, "missing object 'files'");

  Checkpoint checkpoint;
  checkpoint.path = stepDir;
  checkpoint.step = step->get<int64_t>();
  checkpoint.formatVersion = kCheckpointFormatVersion;
  checkpoint.resume.dataPosition = dataPosition->get<std::string>();
  checkpoint.resume.rngState = rngState->get<std::string>();
  Expected<SafetensorsFile> model =
      loadVerified(stepDir, kModelFile, *files, manifestPath);
  if (!model)
    return model.error();
  checkpoint.model = std::move(*model);
  Expected<SafetensorsFile> optimizer =
      loadVerified(stepDir, kOptimizerFile, *files, manifestPath);
  if (!optimizer)
    return optimizer.error();
  checkpoint.optimizer = std::move(*optimizer);
  return checkpoint;
}

Expected<Checkpoint> loadLatestCheckpoint(const std::string &dir) {
  Expected<std::string> name = readLatestName(dir);
  if (!name)
    return name.error();
  Expected<Checkpoint> checkpoint = loadCheckpoint(joinPath(dir, *name));
  if (!checkpoint)
    return checkpoint.error();
  if (checkpointDirName(checkpoint->step) != *name)
    return makeError(joinPath(joinPath(dir, *name), kManifestFile),
                     "step " + std::to_string(checkpoint->step) +
                         " does not match the directory name " + *name);
  return checkpoint;
}

} // namespace dsflow::io
