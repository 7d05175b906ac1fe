// The experiment file reader (YAML, `_base_` composition, `${name}` references, typed reads) on
// arbitrary text: every key of every top-level section is read as each type a config asks for.
#include "cseg/config/config.h"
#include "fuzz_input.h"

using cseg::fuzz::expect_clean_error;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cseg::fuzz::write_input(data, size, "experiment.yaml");
  expect_clean_error([&] {
    auto tree = cseg::config::load({path, {"train.lr=0.5"}, ""});
    (void)tree.dump();
    auto root = tree.root();
    for (const auto& name : root.keys()) {
      expect_clean_error([&] {
        auto section = root.section(name);
        for (const auto& key : section.keys()) {
          (void)section.where(key);
          expect_clean_error([&] {
            bool v;
            section.read(key, v);
          });
          expect_clean_error([&] {
            int64_t v;
            section.read(key, v);
          });
          expect_clean_error([&] {
            uint64_t v;
            section.read(key, v);
          });
          expect_clean_error([&] {
            double v;
            section.read(key, v);
          });
          expect_clean_error([&] {
            std::string v;
            section.read(key, v);
          });
          expect_clean_error([&] {
            std::string v;
            section.read_joined(key, v);
          });
          expect_clean_error([&] {
            std::vector<std::string> v;
            section.read(key, v);
          });
          expect_clean_error([&] {
            std::vector<std::vector<int>> v;
            section.read(key, v);
          });
          expect_clean_error([&] { (void)section.section(key).keys(); });
        }
        section.finish();
      });
    }
    root.finish();
  });
  return 0;
}
