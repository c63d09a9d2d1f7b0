// pdiff/io/checkpoint.hpp — Checkpoint: the weights of one model folder, in one file or sharded.
//
// | folder holds                                    | what open() does                                |
// |-------------------------------------------------|-------------------------------------------------|
// | model.safetensors / diffusion_pytorch_model.safetensors | maps that file                           |
// | *.safetensors.index.json ("weight_map")         | maps every shard the index names                |
// | any other *.safetensors                         | maps them all (names must not repeat)           |
// Tensors are looked up by their checkpoint name; a missing name is an error naming the folder and
// the tensor. read_plan() builds a rank's shard from a layer's ShardPlan, reading only its slice;
// read_plan_bf16() the same shard kept in bf16 (BF16 bytes as stored: no f32 round trip).
// open_files() maps named files only (a folder holding several models' files, e.g. BAGEL's ema + ae).
// alias(name, target) makes `name` read `target` (another naming of the same weights, e.g. the BFL
// autoencoder's names under diffusers' ones); squeeze drops trailing unit dims (1x1 conv as Linear).
#pragma once

#include <algorithm>

#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "pdiff/io/safetensors.hpp"
#include "pdiff/io/shard_plan.hpp"

namespace pdiff {

class Checkpoint {
 public:
  static Checkpoint open(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    PDIFF_CHECK(fs::is_directory(dir), "checkpoint: '", dir.string(), "' is not a folder");
    Checkpoint c;
    c.dir_ = dir.string();
    std::vector<fs::path> index, files;
    for (auto& e : fs::directory_iterator(dir)) {
      const std::string n = e.path().filename().string();
      if (n.ends_with(".safetensors.index.json")) index.push_back(e.path());
      else if (n.ends_with(".safetensors")) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (!index.empty()) {
      PDIFF_CHECK(index.size() == 1, "checkpoint: '", c.dir_, "' has ", index.size(), " *.safetensors.index.json files");
      nlohmann::json j;
      try {
        std::ifstream in(index[0]);
        j = nlohmann::json::parse(in);
      } catch (const std::exception& e) {
        throw Error(detail::cat("checkpoint: '", index[0].string(), "' is not valid JSON: ", e.what()));
      }
      PDIFF_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), "checkpoint: '", index[0].string(),
                  "' has no weight_map object");
      std::map<std::string, std::size_t> file_ids;
      for (auto& [name, file] : j["weight_map"].items()) {
        PDIFF_CHECK(file.is_string(), "checkpoint: weight_map entry '", name, "' is not a file name");
        const std::string f = file.get<std::string>();
        auto it = file_ids.find(f);
        if (it == file_ids.end()) {
          PDIFF_CHECK(fs::exists(dir / f), "checkpoint: '", index[0].string(), "' names shard '", f,
                      "' which is missing");
          it = file_ids.emplace(f, c.files_.size()).first;
          c.files_.push_back(SafeTensors::open((dir / f).string()));
        }
        PDIFF_CHECK(c.files_[it->second].contains(name), "checkpoint: shard '", f, "' lacks '", name,
                    "' that the index places there");
        c.where_[name] = it->second;
      }
    } else {
      PDIFF_CHECK(!files.empty(), "checkpoint: '", c.dir_, "' has no *.safetensors file");
      for (auto& f : files) {
        c.files_.push_back(SafeTensors::open(f.string()));
        for (auto& n : c.files_.back().names()) {
          PDIFF_CHECK(!c.where_.count(n), "checkpoint: tensor '", n, "' appears in two files of '", c.dir_, "'");
          c.where_[n] = c.files_.size() - 1;
        }
      }
    }
    return c;
  }

  static Checkpoint open_files(const std::vector<std::filesystem::path>& files) {
    PDIFF_CHECK(!files.empty(), "checkpoint: no file given");
    Checkpoint c;
    c.dir_ = files[0].parent_path().string();
    for (auto& f : files) {
      PDIFF_CHECK(std::filesystem::is_regular_file(f), "checkpoint: '", f.string(), "' is missing");
      c.files_.push_back(SafeTensors::open(f.string()));
      for (auto& n : c.files_.back().names()) {
        PDIFF_CHECK(!c.where_.count(n), "checkpoint: tensor '", n, "' appears in two files of '", c.dir_, "'");
        c.where_[n] = c.files_.size() - 1;
      }
    }
    return c;
  }

  void alias(const std::string& name, const std::string& target, bool squeeze = false) {
    aliases_[name] = {target, squeeze};
  }

  const std::string& dir() const { return dir_; }
  bool contains(const std::string& n) const { return where_.count(resolve(n)) != 0; }
  std::vector<std::string> names() const {
    std::vector<std::string> v;
    for (auto& [k, i] : where_) v.push_back(k);
    return v;
  }
  const SafeTensors& file_of(const std::string& n) const {
    const std::string& t = resolve(n);
    auto it = where_.find(t);
    PDIFF_CHECK(it != where_.end(), "checkpoint: '", dir_, "' has no tensor '", t, "'",
                t == n ? std::string() : " (read as '" + n + "')");
    return files_[it->second];
  }
  const TensorInfo& info(const std::string& n) const { return file_of(n).info(resolve(n)); }
  std::vector<std::int64_t> shape(const std::string& n) const { return squeezed(n, info(n).shape); }
  Tensor<float, OnCpu> read(const std::string& n) const {
    auto t = file_of(n).read(resolve(n));
    if (!squeezing(n)) return t;
    const auto d = shape(n);
    return t.view(Shape::from(d.begin(), d.end()));
  }

  // A rank's shard: plan.slices[i].source indexes `names` (e.g. {q_proj, k_proj, v_proj}).
  // `expect_full` lists each source's full shape from the config, so a mismatch between config and
  // checkpoint is reported with both shapes.
  Tensor<float, OnCpu> read_plan(const ShardPlan& plan, std::span<const std::string> names,
                                 std::span<const std::vector<std::int64_t>> expect_full = {}) const {
    return read_plan_as<float>(plan, names, expect_full);
  }
  // The shard in bf16, for layers that keep bf16 weights: BF16 checkpoint bytes go to the layer as they are
  // (no f32 round trip; half the host memory and half the bytes to a device).
  Tensor<bf16, OnCpu> read_plan_bf16(const ShardPlan& plan, std::span<const std::string> names,
                                     std::span<const std::vector<std::int64_t>> expect_full = {}) const {
    return read_plan_as<bf16>(plan, names, expect_full);
  }
  // Whether every named tensor is stored as BF16 (then read_plan_bf16 is exact).
  bool all_bf16(std::span<const std::string> names) const {
    for (const auto& n : names)
      if (info(n).code != StDtype::BF16) return false;
    return !names.empty();
  }

  template <class T>
  Tensor<T, OnCpu> read_plan_as(const ShardPlan& plan, std::span<const std::string> names,
                                std::span<const std::vector<std::int64_t>> expect_full = {}) const {
    for (std::size_t i = 0; i < expect_full.size() && i < names.size(); ++i) {
      auto got = shape(names[i]);
      PDIFF_CHECK(got == expect_full[i], "checkpoint: '", names[i], "' has shape ", fmt(got),
                  " but the config implies ", fmt(expect_full[i]));
    }
    return assemble(plan, [&](const Slice& s) {
      PDIFF_CHECK(std::size_t(s.source) < names.size(), "checkpoint: the plan names source ", s.source, " of ",
                  names.size());
      const std::string& n = names[std::size_t(s.source)];
      const auto full = shape(n);
      const std::int64_t have = full.empty() ? 1 : full[std::size_t(s.dim)];
      PDIFF_CHECK(!squeezing(n), "checkpoint: '", n, "' is a squeezed alias; read it whole");
      auto read = [&](std::int64_t b, std::int64_t e) {
        if constexpr (std::is_same_v<T, bf16>) return file_of(n).read_slice_bf16(resolve(n), s.dim, b, e);
        else return file_of(n).read_slice(resolve(n), s.dim, b, e);
      };
      if (s.end <= have) return read(s.begin, s.end);
      // vocabulary padding: the rows past the end are zero
      auto part = read(std::min(s.begin, have), have);
      return slice_padded(part, s.dim, s.begin - std::min(s.begin, have), s.end - std::min(s.begin, have));
    });
  }
  std::size_t bytes_read() const {
    std::size_t b = 0;
    for (auto& f : files_) b += f.bytes_read();
    return b;
  }

 private:
  struct Alias {
    std::string target;
    bool squeeze = false;
  };
  const std::string& resolve(const std::string& n) const {
    auto it = aliases_.find(n);
    return it == aliases_.end() ? n : it->second.target;
  }
  bool squeezing(const std::string& n) const {
    auto it = aliases_.find(n);
    return it != aliases_.end() && it->second.squeeze;
  }
  std::vector<std::int64_t> squeezed(const std::string& n, std::vector<std::int64_t> s) const {
    if (squeezing(n))
      while (s.size() > 1 && s.back() == 1) s.pop_back();
    return s;
  }
  static std::string fmt(const std::vector<std::int64_t>& s) {
    std::string r = "(";
    for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + ")";
  }
  std::string dir_;
  std::vector<SafeTensors> files_;
  std::map<std::string, std::size_t> where_;
  std::map<std::string, Alias> aliases_;
};

}  // namespace pdiff
