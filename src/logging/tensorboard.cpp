#include "cseg/logging/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "cseg/core/error.h"

namespace fs = std::filesystem;

namespace cseg::logging {

namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

double now() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

// Protobuf wire format: key = (field << 3) | wire type; 0 varint, 1 fixed64, 2 bytes, 5 fixed32.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += char((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += char(v);
}
void key(std::string& out, int field, int wire) { varint(out, uint64_t(field) << 3 | uint64_t(wire)); }
void bytes_field(std::string& out, int field, const std::string& data) {
  key(out, field, 2);
  varint(out, data.size());
  out += data;
}
void varint_field(std::string& out, int field, uint64_t v) {
  key(out, field, 0);
  varint(out, v);
}
void double_field(std::string& out, int field, double v) {
  key(out, field, 1);
  char b[8];
  std::memcpy(b, &v, 8);  // little-endian on every platform cseg builds on
  out.append(b, 8);
}
void float_field(std::string& out, int field, float v) {
  key(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}

/// Event{wall_time = 1, step = 2, summary = 5 {value = 1 [...]}}.
std::string event_with_value(double wall_time, int64_t step, const std::string& value) {
  std::string summary, event;
  bytes_field(summary, 1, value);
  double_field(event, 1, wall_time);
  varint_field(event, 2, uint64_t(step));
  bytes_field(event, 5, summary);
  return event;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  const auto& t = crc_table();
  uint32_t c = 0xFFFFFFFFu;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) c = t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

std::string tf_record(const std::string& data) {
  std::string out;
  const uint64_t len = data.size();
  char lb[8];
  std::memcpy(lb, &len, 8);
  out.append(lb, 8);
  const uint32_t lc = masked_crc32c(lb, 8);
  out.append(reinterpret_cast<const char*>(&lc), 4);
  out += data;
  const uint32_t dc = masked_crc32c(data.data(), data.size());
  out.append(reinterpret_cast<const char*>(&dc), 4);
  return out;
}

std::string event_file_version(double wall_time) {
  std::string event;
  double_field(event, 1, wall_time);
  bytes_field(event, 3, "brain.Event:2");
  return event;
}

std::string event_scalar(double wall_time, int64_t step, const std::string& tag, float value) {
  std::string v;
  bytes_field(v, 1, tag);
  float_field(v, 2, value);
  return event_with_value(wall_time, step, v);
}

std::string event_image(double wall_time, int64_t step, const std::string& tag, int height, int width, int channels,
                        const std::string& png) {
  std::string image, v;
  varint_field(image, 1, uint64_t(height));
  varint_field(image, 2, uint64_t(width));
  varint_field(image, 3, uint64_t(channels));
  bytes_field(image, 4, png);
  bytes_field(v, 1, tag);
  bytes_field(v, 4, image);
  return event_with_value(wall_time, step, v);
}

std::string event_text(double wall_time, int64_t step, const std::string& tag, const std::string& text) {
  // Value{tag, metadata{plugin_data{plugin_name "text"}}, tensor{dtype DT_STRING, shape {}, string_val}}
  std::string plugin, metadata, shape, tensor, v;
  bytes_field(plugin, 1, "text");
  bytes_field(metadata, 1, plugin);
  varint_field(tensor, 1, 7);  // DT_STRING
  bytes_field(tensor, 2, shape);
  bytes_field(tensor, 8, text);
  bytes_field(v, 1, tag);
  bytes_field(v, 9, metadata);
  bytes_field(v, 8, tensor);
  return event_with_value(wall_time, step, v);
}

TensorBoardWriter::TensorBoardWriter(const std::string& run_dir) {
  fs::create_directories(run_dir);
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  const double t = now();
  path_ = (fs::path(run_dir) / fmt::format("events.out.tfevents.{}.{}.{}", int64_t(t), host, getpid())).string();
  out_.open(path_, std::ios::binary | std::ios::app);
  CSEG_CHECK(out_.good(), "cannot write the TensorBoard event file '{}'", path_);
  write(event_file_version(t));
}

void TensorBoardWriter::write(const std::string& event) {
  out_ << tf_record(event);
  out_.flush();
  CSEG_CHECK(out_.good(), "writing the TensorBoard event file '{}' failed (disk full?)", path_);
}

void TensorBoardWriter::scalar(const std::string& tag, double value, int64_t step) {
  write(event_scalar(now(), step, tag, float(value)));
}

void TensorBoardWriter::image(const std::string& tag, const std::string& png, int height, int width, int channels,
                              int64_t step) {
  write(event_image(now(), step, tag, height, width, channels, png));
}

void TensorBoardWriter::text(const std::string& tag, const std::string& markdown, int64_t step) {
  write(event_text(now(), step, tag, markdown));
}

}  // namespace cseg::logging
