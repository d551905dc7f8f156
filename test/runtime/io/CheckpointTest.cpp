//===- CheckpointTest.cpp - Checkpoint round trips, crashes, corruption ---===//
#include "IoTestUtil.h"

#include "io/BFloat16.h"
#include "io/Checkpoint.h"
#include "io/FileUtil.h"

#include <unistd.h>

namespace dsflow::io {
namespace {

using test::readFile;
using test::TempDir;
using test::writeFile;

/// The tensors of one small training state; values depend on `step`.
struct State {
  explicit State(int64_t step)
      : embed(8 * 4), norm(4, 1.0f + step), expAvg(8 * 4), stepCount{step} {
    for (size_t i = 0; i < embed.size(); ++i) {
      embed[i] = static_cast<float>(i) * 0.5f + step;
      expAvg[i] = -static_cast<float>(i) / (step + 1);
    }
    bf16 = floatsToBf16({0.1f, 0.2f, 0.3f});
  }
  std::vector<TensorRef> model() const {
    return {TensorRef::of("model.embed_tokens.weight", {8, 4}, embed),
            TensorRef::of("model.norm.weight", {4}, norm),
            TensorRef::of("lm_head.weight", {3}, bf16)};
  }
  std::vector<TensorRef> optimizer() const {
    return {TensorRef::of("model.embed_tokens.weight.exp_avg", {8, 4}, expAvg),
            TensorRef::of("step", {1}, stepCount)};
  }
  ResumeState resume() const {
    return {"position " + std::to_string(embed[0]), "rng " + std::to_string(1)};
  }

  std::vector<float> embed, norm, expAvg;
  std::vector<BF16> bf16;
  std::vector<int64_t> stepCount;
};

Status save(const std::string &dir, int64_t step) {
  State state(step);
  return saveCheckpoint(dir, step, state.model(), state.optimizer(),
                        state.resume());
}

std::string latestOf(const TempDir &dir) {
  return readFile(dir.file("latest"));
}

/// Expects `loaded` to be the checkpoint save(dir, step) wrote.
void expectStep(const Expected<Checkpoint> &loaded, int64_t step) {
  ASSERT_TRUE(loaded) << loaded.error().message;
  State state(step);
  EXPECT_EQ(loaded->step, step);
  EXPECT_EQ(loaded->formatVersion, kCheckpointFormatVersion);
  EXPECT_EQ(loaded->resume.dataPosition, state.resume().dataPosition);
  EXPECT_EQ(loaded->resume.rngState, state.resume().rngState);
  EXPECT_EQ(*loaded->model.read<float>("model.embed_tokens.weight", {8, 4}),
            state.embed);
  EXPECT_EQ(*loaded->model.read<float>("model.norm.weight", {4}), state.norm);
  EXPECT_EQ(loaded->model.read<BF16>("lm_head.weight", {3})->at(2).bits,
            state.bf16[2].bits);
  EXPECT_EQ(*loaded->optimizer.read<float>("model.embed_tokens.weight.exp_avg",
                                           {8, 4}),
            state.expAvg);
  EXPECT_EQ(*loaded->optimizer.read<int64_t>("step", {1}), state.stepCount);
}

TEST(Checkpoint, SaveAndLoadRoundTrip) {
  TempDir dir;
  std::string ckpt = dir.file("ckpt");
  EXPECT_FALSE(hasCheckpoint(ckpt));
  EXPECT_IO_OK(save(ckpt, 100));
  EXPECT_TRUE(hasCheckpoint(ckpt));
  EXPECT_EQ(readFile(dir.file("ckpt/latest")), "step-100\n");
  EXPECT_EQ(dir.list("ckpt"), (std::vector<std::string>{"latest", "step-100"}));
  EXPECT_EQ(dir.list("ckpt/step-100"),
            (std::vector<std::string>{"manifest.json", "model.safetensors",
                                      "optimizer.safetensors"}));
  Expected<Checkpoint> loaded = loadLatestCheckpoint(ckpt);
  expectStep(loaded, 100);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->path, ckpt + "/step-100");
  EXPECT_EQ(loaded->model.metadata().at("format"), "pt")
      << "Hugging Face loaders need it";
}

TEST(Checkpoint, LatestFollowsTheNewestSave) {
  TempDir dir;
  EXPECT_IO_OK(save(dir.path(), 100));
  EXPECT_IO_OK(save(dir.path(), 200));
  EXPECT_EQ(latestOf(dir), "step-200\n");
  expectStep(loadLatestCheckpoint(dir.path()), 200);
  expectStep(loadCheckpoint(dir.file("step-100")), 100);
}

TEST(Checkpoint, RewindGoesBackToAnOlderStepAndReplacesTheNewer) {
  TempDir dir;
  EXPECT_IO_OK(save(dir.path(), 100));
  EXPECT_IO_OK(save(dir.path(), 200));
  EXPECT_IO_OK(rewindCheckpoint(dir.path(), 100));
  expectStep(loadLatestCheckpoint(dir.path()), 100);
  // Training on from step 100 saves step 200 again, over the old one.
  EXPECT_IO_OK(save(dir.path(), 200));
  EXPECT_EQ(latestOf(dir), "step-200\n");
  Status missing = rewindCheckpoint(dir.path(), 150);
  ASSERT_TRUE(missing);
  EXPECT_NE(missing->message.find("no such checkpoint"), std::string::npos);
  EXPECT_EQ(latestOf(dir), "step-200\n");
}

TEST(Checkpoint, CreatesNestedDirectories) {
  TempDir dir;
  std::string ckpt = dir.file("runs/tiny/ckpt/");
  EXPECT_IO_OK(save(ckpt, 0));
  expectStep(loadLatestCheckpoint(ckpt), 0);
  EXPECT_EQ(dir.list("runs/tiny/ckpt"),
            (std::vector<std::string>{"latest", "step-0"}));
}

TEST(Checkpoint, NoCheckpointYet) {
  TempDir dir;
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()), "/latest: cannot open");
}

TEST(Checkpoint, RefusesANegativeStep) {
  TempDir dir;
  EXPECT_IO_ERROR(save(dir.path(), -1), "checkpoint step -1 is negative");
}

TEST(Checkpoint, RefusesToReplaceTheLatestCheckpoint) {
  TempDir dir;
  EXPECT_IO_OK(save(dir.path(), 100));
  EXPECT_IO_ERROR(save(dir.path(), 100),
                  "step-100: refusing to replace the latest checkpoint");
  expectStep(loadLatestCheckpoint(dir.path()), 100);
}

/// A model whose one tensor's producer writes half its bytes, then calls
/// `halfway` (which fails or kills the process).
std::vector<TensorRef> modelFailingHalfway(std::function<Status()> halfway,
                                           const std::vector<float> &values) {
  TensorRef ref = TensorRef::of("model.norm.weight", {4}, values);
  ref.produce = [halfway, &values](ByteSink &sink) -> Status {
    if (Status error = sink.write(values.data(), 8))
      return error;
    return halfway();
  };
  return {ref};
}

TEST(Checkpoint, FailureMidWriteKeepsThePreviousCheckpoint) {
  TempDir dir;
  EXPECT_IO_OK(save(dir.path(), 100));
  std::vector<float> values = {1, 2, 3, 4};
  Status error = saveCheckpoint(
      dir.path(), 200,
      modelFailingHalfway([] { return IoError{"disk full (simulated)"}; },
                          values),
      {}, {});
  EXPECT_IO_ERROR(error, "disk full (simulated)");
  EXPECT_EQ(latestOf(dir), "step-100\n");
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"latest", "step-100"}))
      << "no partial step-200, no temporaries";
  expectStep(loadLatestCheckpoint(dir.path()), 100);
}

TEST(Checkpoint, CrashMidWriteKeepsThePreviousCheckpoint) {
  TempDir dir;
  EXPECT_IO_OK(save(dir.path(), 100));
  std::vector<float> values = {1, 2, 3, 4};
  // The child process dies in the middle of writing model.safetensors.
  EXPECT_EXIT(
      {
        (void)saveCheckpoint(dir.path(), 200,
                             modelFailingHalfway(
                                 []() -> Status {
                                   ::_exit(3);
                                   return std::nullopt;
                                 },
                                 values),
                             {}, {});
        ::_exit(0);
      },
      ::testing::ExitedWithCode(3), "");
  EXPECT_EQ(latestOf(dir), "step-100\n");
  std::vector<std::string> names = dir.list();
  ASSERT_EQ(names.size(), 3u) << "latest, step-100 and the crash's temporary";
  EXPECT_EQ(names[0].rfind(".tmp-step-200-", 0), 0u) << names[0];
  EXPECT_FALSE(pathExists(dir.file("step-200")));
  expectStep(loadLatestCheckpoint(dir.path()), 100);

  // The next save cleans up after the crash.
  EXPECT_IO_OK(save(dir.path(), 200));
  EXPECT_EQ(dir.list(),
            (std::vector<std::string>{"latest", "step-100", "step-200"}));
  expectStep(loadLatestCheckpoint(dir.path()), 200);
}

TEST(Checkpoint, CrashBeforeLatestWasUpdated) {
  // A crash after step-200 was renamed into place but before `latest` moved:
  // step-100 stays the latest, and saving step 200 again replaces the orphan.
  TempDir dir;
  EXPECT_IO_OK(save(dir.path(), 100));
  EXPECT_IO_OK(save(dir.path(), 200));
  writeFile(dir.file("latest"), "step-100\n");
  expectStep(loadLatestCheckpoint(dir.path()), 100);
  EXPECT_IO_OK(save(dir.path(), 200));
  EXPECT_EQ(latestOf(dir), "step-200\n");
  EXPECT_EQ(dir.list(),
            (std::vector<std::string>{"latest", "step-100", "step-200"}));
  expectStep(loadLatestCheckpoint(dir.path()), 200);
}

class CorruptCheckpoint : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_FALSE(save(dir.path(), 300)); }
  std::string file(const std::string &name) {
    return dir.file("step-300/" + name);
  }
  TempDir dir;
};

TEST_F(CorruptCheckpoint, FlippedByteInTheData) {
  std::string bytes = readFile(file("model.safetensors"));
  bytes[bytes.size() - 3] ^= 0x01;
  writeFile(file("model.safetensors"), bytes);
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "step-300/model.safetensors: checksum");
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()), "(corrupted)");
}

TEST_F(CorruptCheckpoint, FlippedByteInTheHeader) {
  std::string bytes = readFile(file("optimizer.safetensors"));
  bytes[20] ^= 0x20;
  writeFile(file("optimizer.safetensors"), bytes);
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "optimizer.safetensors: checksum");
}

TEST_F(CorruptCheckpoint, TruncatedFile) {
  std::string bytes = readFile(file("optimizer.safetensors"));
  writeFile(file("optimizer.safetensors"), bytes.substr(0, bytes.size() / 2));
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "step-300/optimizer.safetensors: size " +
                      std::to_string(bytes.size() / 2) +
                      " differs from the manifest's " +
                      std::to_string(bytes.size()));
}

TEST_F(CorruptCheckpoint, MissingFile) {
  ASSERT_EQ(::unlink(file("optimizer.safetensors").c_str()), 0);
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "step-300/optimizer.safetensors: cannot open");
}

TEST_F(CorruptCheckpoint, MissingManifest) {
  ASSERT_EQ(::unlink(file("manifest.json").c_str()), 0);
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "step-300/manifest.json: cannot open");
}

TEST_F(CorruptCheckpoint, ManifestNotJson) {
  writeFile(file("manifest.json"), "{\"step\": 3");
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "step-300/manifest.json: not a JSON object");
}

/// Rewrites one field of the manifest.
void editManifest(const std::string &path, const std::string &from,
                  const std::string &to) {
  std::string text = readFile(path);
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from << " in " << text;
  text.replace(at, from.size(), to);
  writeFile(path, text);
}

TEST_F(CorruptCheckpoint, ManifestFromANewerVersion) {
  editManifest(file("manifest.json"), "\"format_version\": 1",
               "\"format_version\": 2");
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "manifest.json: format version 2 is not supported (this "
                  "build reads 1)");
}

TEST_F(CorruptCheckpoint, ManifestMissingFields) {
  editManifest(file("manifest.json"), "\"rng_state\"", "\"rng\"");
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "missing string 'data_position' or 'rng_state'");
}

TEST_F(CorruptCheckpoint, ManifestWithoutChecksums) {
  editManifest(file("manifest.json"), "\"model.safetensors\"", "\"other\"");
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "manifest.json: no valid entry for model.safetensors in "
                  "'files'");
}

TEST_F(CorruptCheckpoint, ManifestStepDisagreesWithTheDirectory) {
  editManifest(file("manifest.json"), "\"step\": 300", "\"step\": 301");
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "step 301 does not match the directory name step-300");
}

TEST_F(CorruptCheckpoint, LatestPointerGarbage) {
  writeFile(dir.file("latest"), "../../etc\n");
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "/latest: expected 'step-<N>', got '../../etc'");
  writeFile(dir.file("latest"), "step-0300");
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()), "got 'step-0300'");
  writeFile(dir.file("latest"), "");
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()), "got ''");
}

TEST_F(CorruptCheckpoint, LatestPointsAtAMissingStep) {
  writeFile(dir.file("latest"), "step-400\n");
  EXPECT_IO_ERROR(loadLatestCheckpoint(dir.path()),
                  "step-400/manifest.json: cannot open");
}

} // namespace
} // namespace dsflow::io
