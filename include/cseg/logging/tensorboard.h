#pragma once
/// TensorBoard event files written natively (no Python, no protobuf library): the record
/// framing (length, masked CRC-32C of the length, data, masked CRC-32C of the data) and the few
/// protobuf messages TensorBoard reads (Event, Summary, Value, Image, TensorProto for text),
/// encoded by hand. The CRC is CRC-32C (Castagnoli; crc32c("123456789") = 0xE3069283), masked
/// as ((c >> 15) | (c << 17)) + 0xA282EAD8; a file is named events.out.tfevents.<time>.<host>.<pid>
/// and starts with an Event whose file_version is "brain.Event:2". wandb imports the same files
/// with its TensorBoard sync.
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace cseg::logging {

/// CRC-32C (Castagnoli, reflected 0x82F63B78): crc32c("123456789") = 0xE3069283.
uint32_t crc32c(const void* data, size_t size);
/// TensorBoard's masked CRC: ((crc >> 15) | (crc << 17)) + 0xA282EAD8.
uint32_t masked_crc32c(const void* data, size_t size);
/// One framed record around `data` (a serialised Event).
std::string tf_record(const std::string& data);

/// Serialised Event messages (exposed for tests).
std::string event_file_version(double wall_time);
std::string event_scalar(double wall_time, int64_t step, const std::string& tag, float value);
std::string event_image(double wall_time, int64_t step, const std::string& tag, int height, int width, int channels,
                        const std::string& png);
std::string event_text(double wall_time, int64_t step, const std::string& tag, const std::string& text);

/// One event file in `run_dir` (created): events.out.tfevents.<unix time>.<host>.<pid>.
/// Every write is flushed, so a killed run keeps what it logged.
class TensorBoardWriter {
 public:
  explicit TensorBoardWriter(const std::string& run_dir);
  void scalar(const std::string& tag, double value, int64_t step);
  /// `png`: an encoded PNG of height x width x channels (3 RGB, 4 RGBA, 1 gray).
  void image(const std::string& tag, const std::string& png, int height, int width, int channels, int64_t step);
  /// Markdown text (TensorBoard's text tab renders tables).
  void text(const std::string& tag, const std::string& markdown, int64_t step);
  const std::string& path() const { return path_; }

 private:
  void write(const std::string& event);
  std::string path_;
  std::ofstream out_;
};

}  // namespace cseg::logging
