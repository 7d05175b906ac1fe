#pragma once
/// FMNIST-Scenes: the embedded default data. Fashion-MNIST photos (Debian's dataset-fashion-mnist)
/// composed into RGB segmentation scenes, written in the Pascal VOC on-disk layout so the VOC
/// loader reads them. Labels: 0 background, 1..10 = Fashion-MNIST class + 1, 255 = void border.
/// Train scenes draw only train photos; val scenes t10k[0, 5000), test scenes t10k[5000, 10000).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace cseg::data::fmnist {

/// Images and labels of one IDX pair (gzip-compressed or not).
struct IdxSet {
  int count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  ///< count * rows * cols
  std::vector<uint8_t> labels;  ///< count
};
IdxSet read_idx(const std::string& images_path, const std::string& labels_path);

/// Where dataset-fashion-mnist installs the IDX files (override with CSEG_FMNIST_DIR).
std::string default_fmnist_dir();

/// How a place looks: the domain-incremental work builds sequences of these.
struct Environment {
  std::string name = "studio";
  std::string texture = "blobs";                       ///< flat | gradient | blobs | stripes | checker
  std::array<double, 3> background{0.45, 0.47, 0.50};  ///< base colour, RGB in [0, 1]
  double texture_strength = 0.25;                      ///< amplitude of the texture around the base colour
  double brightness = 1.0;                             ///< global lighting gain
  std::array<double, 3> tint{1.0, 1.0, 1.0};           ///< colour cast of the light
  double blur_sigma = 0.0;                             ///< Gaussian blur (pixels) of the sensor
  double noise_sigma = 0.02;                           ///< Gaussian sensor noise, in [0, 1] units
};

/// Named environments: studio (default), office, warehouse, outdoor, night.
Environment environment_preset(const std::string& name);
std::vector<std::string> environment_names();

struct SceneOptions {
  int width = 96, height = 96;
  int min_items = 2, max_items = 4;
  double min_scale = 1.4, max_scale = 3.2;  ///< item size = 28 px * scale
  int border = 1;                           ///< void (255) border width around items, as in VOC
  Environment environment;
};

struct GenerateOptions {
  std::string out_dir;
  std::string fmnist_dir;  ///< empty: default_fmnist_dir()
  uint64_t seed = 0;
  int train = 2000, val = 300, test = 500;
  int threads = 2;
  /// > 1: scenes come as video sequences of this many frames (scene i is frame i % n of sequence
  /// i / n), items moving at a constant velocity; adds Depth/, Flow/ and ImageSets/Sequences/.
  int frames_per_sequence = 1;
  SceneOptions scene;
};

/// One photo drawn alone, as scenes draw their items (side 28 px x a scale in [min_scale,
/// max_scale], a random flip, colour and position that may crop it by up to a quarter), on a
/// background of one of `textures` with a random colour, light and sensor noise: the images of
/// classification pretraining (pretrain/). RGB, size x size x 3, deterministic for (photo, seed).
struct PhotoOptions {
  int size = 64;
  double min_scale = 1.4, max_scale = 2.2;
  std::vector<std::string> textures{"flat", "blobs", "gradient"};
};
std::vector<uint8_t> render_photo(const IdxSet& photos, int index, const PhotoOptions& options, uint64_t seed);

/// One composed scene (RGB image and label map), deterministic for (pool, seed).
struct Scene {
  std::vector<uint8_t> rgb;    ///< height * width * 3
  std::vector<uint8_t> label;  ///< height * width
  int width = 0, height = 0;
};
/// Composes a scene from photos [first, first+count) of `photos`.
Scene compose_scene(const IdxSet& photos, int first, int count, const SceneOptions& options, uint64_t seed);

/// One frame of a video sequence: the scene plus what the generator knows about its geometry.
struct Frame : Scene {
  std::vector<float> depth;  ///< height * width, metres: one depth per item layer, background farthest
  /// height * width * 2: where the surface seen at each pixel is in the next frame, minus where it
  /// is now (dx, dy), in pixels. Items translate rigidly, the background stands still, so this is
  /// exact except where a surface is covered or uncovered in the next frame.
  std::vector<float> flow;
};

/// A sequence of `frames` frames: the layout of compose_scene (same photos, colours and sizes
/// for the same seed) with every item moving at its own constant velocity of
/// `max_speed` pixels per frame or less; fresh sensor noise in every frame.
std::vector<Frame> compose_sequence(const IdxSet& photos, int first, int count, const SceneOptions& options, int frames,
                                    uint64_t seed, double max_speed = 2.5);

/// Writes the scenes in VOC layout (JPEGImages/, SegmentationClass/ palette PNGs,
/// ImageSets/Segmentation/{train,val,test}.txt) plus scenes.json with the options used.
/// Video sequences (frames_per_sequence > 1) add Depth/<id>.png (uint16, millimetres),
/// Flow/<id>.flo (true forward flow, Middlebury format; none for a sequence's last frame) and
/// ImageSets/Sequences/<split>.txt (one sequence per line: its frame ids in order).
/// Returns false (and writes nothing) if `out_dir` already holds scenes made with the same options.
bool generate_scenes(const GenerateOptions& options);

}  // namespace cseg::data::fmnist
