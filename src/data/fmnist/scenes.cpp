#include "cseg/data/fmnist/scenes.h"

#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "cseg/core/error.h"
#include "cseg/core/runtime.h"
#include "cseg/data/class_index.h"
#include "cseg/data/image_io.h"
#include "cseg/data/label_spaces.h"

namespace fs = std::filesystem;

namespace cseg::data::fmnist {

namespace {

std::vector<uint8_t> read_gz(const std::string& path) {
  CSEG_CHECK(fs::exists(path),
             "Fashion-MNIST file '{}' does not exist (install the Debian package "
             "dataset-fashion-mnist, or set CSEG_FMNIST_DIR)",
             path);
  gzFile f = gzopen(path.c_str(), "rb");
  CSEG_CHECK(f, "cannot open '{}'", path);
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  gzclose(f);
  CSEG_CHECK(n == 0 && err == Z_OK, "'{}' is corrupt: {}", path, msg ? msg : "read error");
  return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t off) {
  return (uint32_t(b[off]) << 24) | (uint32_t(b[off + 1]) << 16) | (uint32_t(b[off + 2]) << 8) | b[off + 3];
}

}  // namespace

IdxSet read_idx(const std::string& images_path, const std::string& labels_path) {
  auto img = read_gz(images_path);
  auto lab = read_gz(labels_path);
  CSEG_CHECK(img.size() >= 16 && be32(img, 0) == 2051, "'{}' is not an IDX image file (magic 2051)", images_path);
  CSEG_CHECK(lab.size() >= 8 && be32(lab, 0) == 2049, "'{}' is not an IDX label file (magic 2049)", labels_path);
  IdxSet s;
  s.count = static_cast<int>(be32(img, 4));
  s.rows = static_cast<int>(be32(img, 8));
  s.cols = static_cast<int>(be32(img, 12));
  CSEG_CHECK(img.size() == 16 + size_t(s.count) * s.rows * s.cols, "'{}' is truncated", images_path);
  CSEG_CHECK(be32(lab, 4) == uint32_t(s.count) && lab.size() == 8 + size_t(s.count),
             "'{}' does not match '{}' ({} images)", labels_path, images_path, s.count);
  s.pixels.assign(img.begin() + 16, img.end());
  s.labels.assign(lab.begin() + 8, lab.end());
  for (auto l : s.labels) CSEG_CHECK(l < 10, "'{}' holds label {} (expected 0..9)", labels_path, l);
  return s;
}

std::string default_fmnist_dir() {
  if (const char* d = std::getenv("CSEG_FMNIST_DIR")) return d;
  return "/usr/share/datasets/fashion-mnist";
}

std::vector<std::string> environment_names() { return {"studio", "office", "warehouse", "outdoor", "night"}; }

Environment environment_preset(const std::string& name) {
  Environment e;
  e.name = name;
  if (name == "studio") return e;
  if (name == "office") {
    e.texture = "stripes";
    e.background = {0.62, 0.55, 0.42};
    e.texture_strength = 0.18;
    e.tint = {1.05, 1.0, 0.88};
    e.noise_sigma = 0.015;
  } else if (name == "warehouse") {
    e.texture = "checker";
    e.background = {0.35, 0.36, 0.33};
    e.texture_strength = 0.22;
    e.brightness = 0.85;
    e.blur_sigma = 0.8;
    e.noise_sigma = 0.03;
  } else if (name == "outdoor") {
    e.texture = "gradient";
    e.background = {0.40, 0.58, 0.38};
    e.texture_strength = 0.3;
    e.brightness = 1.2;
    e.tint = {1.0, 1.02, 1.08};
  } else if (name == "night") {
    e.texture = "blobs";
    e.background = {0.12, 0.13, 0.22};
    e.texture_strength = 0.12;
    e.brightness = 0.55;
    e.tint = {0.85, 0.9, 1.15};
    e.noise_sigma = 0.06;
    e.blur_sigma = 0.5;
  } else {
    fail("unknown environment '{}'; known: {}", name, fmt::join(environment_names(), ", "));
  }
  return e;
}

namespace {

/// Background texture in [0,1] floats, H x W x 3.
cv::Mat make_background(const SceneOptions& o, std::mt19937_64& rng) {
  const Environment& env = o.environment;
  std::uniform_real_distribution<float> u(0.f, 1.f);
  cv::Mat pattern(o.height, o.width, CV_32FC1, cv::Scalar(0));
  if (env.texture == "blobs") {
    cv::Mat small(6, 6, CV_32FC1);
    for (int i = 0; i < 36; ++i) small.at<float>(i) = u(rng) - 0.5f;
    cv::resize(small, pattern, pattern.size(), 0, 0, cv::INTER_CUBIC);
  } else if (env.texture == "gradient") {
    float angle = u(rng) * 6.2832f;
    for (int y = 0; y < o.height; ++y)
      for (int x = 0; x < o.width; ++x)
        pattern.at<float>(y, x) = 0.5f * (std::cos(angle) * x / o.width + std::sin(angle) * y / o.height);
  } else if (env.texture == "stripes") {
    float period = 8.f + 16.f * u(rng), angle = u(rng) * 3.1416f, phase = u(rng) * 6.2832f;
    for (int y = 0; y < o.height; ++y)
      for (int x = 0; x < o.width; ++x)
        pattern.at<float>(y, x) =
            0.5f * std::sin(phase + 6.2832f * (std::cos(angle) * x + std::sin(angle) * y) / period);
  } else if (env.texture == "checker") {
    int cell = 8 + static_cast<int>(u(rng) * 16);
    for (int y = 0; y < o.height; ++y)
      for (int x = 0; x < o.width; ++x) pattern.at<float>(y, x) = ((x / cell + y / cell) % 2) ? 0.5f : -0.5f;
  } else {
    CSEG_CHECK(env.texture == "flat",
               "environment '{}': unknown texture '{}' (flat, gradient, blobs, stripes, checker)", env.name,
               env.texture);
  }
  cv::Mat bg(o.height, o.width, CV_32FC3);
  // A small per-scene jitter of the base colour, so the background is not one constant.
  float jitter[3];
  for (float& j : jitter) j = (u(rng) - 0.5f) * 0.1f;
  for (int y = 0; y < o.height; ++y)
    for (int x = 0; x < o.width; ++x) {
      float p = pattern.at<float>(y, x) * static_cast<float>(env.texture_strength) * 2.f;
      auto& px = bg.at<cv::Vec3f>(y, x);
      for (int c = 0; c < 3; ++c) px[c] = static_cast<float>(env.background[c]) + jitter[c] + p;
    }
  return bg;
}

}  // namespace

namespace {

/// An item as placed in a scene: its photo (drawn size, flipped as drawn, raw 0..255 values as
/// floats), its colour and where it is at frame 0; sequences add a velocity.
struct PlacedItem {
  int cls = 0;
  cv::Mat photo;  ///< side x side, CV_32F
  std::array<float, 3> colour{};
  int x0 = 0, y0 = 0;
  double vx = 0, vy = 0;  ///< pixels per frame
};

struct Layout {
  cv::Mat background;             ///< H x W x 3 floats in [0, 1]
  std::vector<PlacedItem> items;  ///< in paint order (later ones on top)
};

/// Photo `photo` drawn as an item: its size, flip, position and colour, in this order from `rng`.
PlacedItem place_item(const IdxSet& photos, int photo, const SceneOptions& o, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  PlacedItem it;
  it.cls = photos.labels[photo];
  cv::Mat gray(photos.rows, photos.cols, CV_8UC1,
               const_cast<uint8_t*>(&photos.pixels[size_t(photo) * photos.rows * photos.cols]));
  double scale = o.min_scale + u(rng) * (o.max_scale - o.min_scale);
  int side = std::max(8, static_cast<int>(std::lround(photos.rows * scale)));
  cv::Mat item;
  cv::resize(gray, item, cv::Size(side, side), 0, 0, cv::INTER_LINEAR);
  if (u(rng) < 0.5) cv::flip(item, item, 1);
  item.convertTo(it.photo, CV_32F);
  // Positions let an item leave the frame by up to a quarter of its size.
  it.x0 = static_cast<int>(-side / 4 + u(rng) * (o.width - side / 2));
  it.y0 = static_cast<int>(-side / 4 + u(rng) * (o.height - side / 2));
  // A random, fairly saturated colour per item: colour carries no class information.
  for (float& c : it.colour) c = static_cast<float>(0.25 + 0.75 * u(rng));
  return it;
}

/// Draws the background and the items. The order of the draws from `rng` fixes every scene the
/// generator has ever written for a seed: keep it.
Layout draw_layout(const IdxSet& photos, int first, int count, const SceneOptions& o, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  // Photos by class, within [first, first + count).
  std::array<std::vector<int>, 10> by_class;
  for (int i = first; i < first + count; ++i) by_class[photos.labels[i]].push_back(i);
  Layout layout;
  layout.background = make_background(o, rng);
  const int items = o.min_items + static_cast<int>(u(rng) * (o.max_items - o.min_items + 1));
  for (int k = 1; k <= std::min(items, 254); ++k) {
    const int cls = static_cast<int>(u(rng) * 10) % 10;
    const auto& pool = by_class[cls];
    CSEG_CHECK(!pool.empty(), "no Fashion-MNIST photo of class {} in the chosen range", cls);
    const int photo = pool[static_cast<size_t>(u(rng) * pool.size()) % pool.size()];
    layout.items.push_back(place_item(photos, photo, o, rng));
  }
  return layout;
}

/// Depth of item layer k of n (1-based, paint order): later items are nearer; the background is
/// at 4 m.
constexpr float kBackgroundDepth = 4.f;
float layer_depth(int k, int n) { return 3.f - 2.f * static_cast<float>(k) / static_cast<float>(n + 1); }

/// Renders the layout at frame `t` (items at x0 + vx t); sensor noise from `rng`. Fills `depth`
/// and `flow` (H x W floats, H x W x 2 floats) when given.
Scene render(const Layout& layout, const SceneOptions& o, double t, std::mt19937_64& rng,
             std::vector<float>* depth_out = nullptr, std::vector<float>* flow_out = nullptr) {
  cv::Mat image = layout.background.clone();
  cv::Mat label(o.height, o.width, CV_8UC1, cv::Scalar(0));
  cv::Mat depth(o.height, o.width, CV_8UC1, cv::Scalar(0));  // paint order, 0 = background
  cv::Mat flow(o.height, o.width, CV_32FC2, cv::Scalar(0, 0));
  for (size_t i = 0; i < layout.items.size(); ++i) {
    const PlacedItem& it = layout.items[i];
    const int k = static_cast<int>(i) + 1;
    const double x = it.x0 + it.vx * t, y = it.y0 + it.vy * t;
    const int x0 = static_cast<int>(std::floor(x)), y0 = static_cast<int>(std::floor(y));
    const double fx = x - x0, fy = y - y0;
    cv::Mat src = it.photo;
    if (fx != 0 || fy != 0) {  // sub-pixel position: shift the photo by the fraction first
      cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, fx, 0, 1, fy);
      cv::warpAffine(it.photo, src, shift, cv::Size(it.photo.cols + 1, it.photo.rows + 1), cv::INTER_LINEAR,
                     cv::BORDER_CONSTANT, cv::Scalar(0));
    }
    for (int sy = 0; sy < src.rows; ++sy) {
      int iy = y0 + sy;
      if (iy < 0 || iy >= o.height) continue;
      for (int sx = 0; sx < src.cols; ++sx) {
        int ix = x0 + sx;
        if (ix < 0 || ix >= o.width) continue;
        float v = src.at<float>(sy, sx) / 255.f;
        float alpha = std::min(1.f, v / 0.15f);  // soft edge from the photo's own dark surround
        if (alpha <= 0.f) continue;
        auto& px = image.at<cv::Vec3f>(iy, ix);
        for (int c = 0; c < 3; ++c) px[c] = (1 - alpha) * px[c] + alpha * (0.15f + 0.85f * v) * it.colour[c];
        if (alpha >= 0.5f) {
          label.at<uint8_t>(iy, ix) = static_cast<uint8_t>(it.cls + 1);
          depth.at<uint8_t>(iy, ix) = static_cast<uint8_t>(k);
          flow.at<cv::Vec2f>(iy, ix) = cv::Vec2f(static_cast<float>(it.vx), static_cast<float>(it.vy));
        }
      }
    }
  }
  // Void border as in VOC: pixels next to an item painted above them (background or an occluded
  // item) within `border` pixels become 255.
  cv::Mat out_label = label.clone();
  const int r = o.border;
  for (int y = 0; y < o.height && r > 0; ++y)
    for (int x = 0; x < o.width; ++x) {
      const uint8_t d = depth.at<uint8_t>(y, x), l = label.at<uint8_t>(y, x);
      bool edge = false;
      for (int dy = -r; dy <= r && !edge; ++dy)
        for (int dx = -r; dx <= r && !edge; ++dx) {
          int yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= o.height || xx < 0 || xx >= o.width) continue;
          edge = depth.at<uint8_t>(yy, xx) > d && label.at<uint8_t>(yy, xx) != l;
        }
      if (edge) out_label.at<uint8_t>(y, x) = 255;
    }
  // The light and the sensor.
  const Environment& env = o.environment;
  std::normal_distribution<float> noise(0.f, static_cast<float>(env.noise_sigma));
  for (int y = 0; y < o.height; ++y)
    for (int x = 0; x < o.width; ++x) {
      auto& px = image.at<cv::Vec3f>(y, x);
      for (int c = 0; c < 3; ++c) px[c] = px[c] * static_cast<float>(env.brightness * env.tint[c]);
    }
  if (env.blur_sigma > 0) cv::GaussianBlur(image, image, cv::Size(0, 0), env.blur_sigma);
  Scene s;
  s.width = o.width;
  s.height = o.height;
  s.rgb.resize(size_t(o.width) * o.height * 3);
  s.label.assign(out_label.datastart, out_label.dataend);
  for (int y = 0; y < o.height; ++y)
    for (int x = 0; x < o.width; ++x) {
      const auto& px = image.at<cv::Vec3f>(y, x);
      for (int c = 0; c < 3; ++c) {
        float v = px[c] + (env.noise_sigma > 0 ? noise(rng) : 0.f);
        s.rgb[(size_t(y) * o.width + x) * 3 + c] = static_cast<uint8_t>(std::clamp(v, 0.f, 1.f) * 255.f + 0.5f);
      }
    }
  if (depth_out) {
    const int n = static_cast<int>(layout.items.size());
    depth_out->resize(size_t(o.width) * o.height);
    for (size_t p = 0; p < depth_out->size(); ++p) {
      const int k = depth.data[p];
      (*depth_out)[p] = k == 0 ? kBackgroundDepth : layer_depth(k, n);
    }
  }
  if (flow_out)
    flow_out->assign(reinterpret_cast<const float*>(flow.datastart), reinterpret_cast<const float*>(flow.dataend));
  return s;
}

}  // namespace

std::vector<uint8_t> render_photo(const IdxSet& photos, int index, const PhotoOptions& p, uint64_t seed) {
  CSEG_CHECK(index >= 0 && index < photos.count, "photo {} is outside the set's {} photos", index, photos.count);
  CSEG_CHECK(!p.textures.empty(), "render_photo: no background texture to draw from");
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  SceneOptions o;
  o.width = o.height = p.size;
  o.min_scale = p.min_scale;
  o.max_scale = p.max_scale;
  o.border = 0;
  // A place of its own: texture, colour, light and sensor drawn at random.
  Environment& e = o.environment;
  e.name = "random";
  e.texture = p.textures[static_cast<size_t>(u(rng) * p.textures.size()) % p.textures.size()];
  for (double& c : e.background) c = 0.1 + 0.8 * u(rng);
  e.texture_strength = 0.05 + 0.25 * u(rng);
  e.brightness = 0.6 + 0.6 * u(rng);
  for (double& c : e.tint) c = 0.9 + 0.2 * u(rng);
  e.noise_sigma = 0.04 * u(rng);
  Layout layout;
  layout.background = make_background(o, rng);
  layout.items.push_back(place_item(photos, index, o, rng));
  return render(layout, o, 0.0, rng).rgb;
}

Scene compose_scene(const IdxSet& photos, int first, int count, const SceneOptions& o, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Layout layout = draw_layout(photos, first, count, o, rng);
  return render(layout, o, 0.0, rng);
}

std::vector<Frame> compose_sequence(const IdxSet& photos, int first, int count, const SceneOptions& o, int frames,
                                    uint64_t seed, double max_speed) {
  CSEG_CHECK(frames >= 1, "a sequence needs at least one frame (got {})", frames);
  CSEG_CHECK(max_speed >= 0, "item speed must be >= 0 (got {})", max_speed);
  std::mt19937_64 rng(seed);
  Layout layout = draw_layout(photos, first, count, o, rng);
  std::mt19937_64 motion(core::mix_seed(seed, 1, 0x6d6f74));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (auto& it : layout.items) {
    const double speed = max_speed * (0.2 + 0.8 * u(motion)), angle = 6.283185307179586 * u(motion);
    it.vx = speed * std::cos(angle);
    it.vy = speed * std::sin(angle);
  }
  std::vector<Frame> out(frames);
  for (int f = 0; f < frames; ++f) {
    std::mt19937_64 noise(core::mix_seed(seed, f + 2, 0x6e6f69));
    Frame& fr = out[f];
    static_cast<Scene&>(fr) = render(layout, o, f, noise, &fr.depth, &fr.flow);
  }
  return out;
}

namespace {
nlohmann::json options_json(const GenerateOptions& g) {
  const auto& s = g.scene;
  const auto& e = s.environment;
  nlohmann::json j = {{"generator", "cseg fmnist-scenes v1"},
                      {"seed", g.seed},
                      {"counts", {{"train", g.train}, {"val", g.val}, {"test", g.test}}},
                      {"size", {s.width, s.height}},
                      {"items", {s.min_items, s.max_items}},
                      {"scale", {s.min_scale, s.max_scale}},
                      {"saliency_maps", true},
                      {"border", s.border},
                      {"environment",
                       {{"name", e.name},
                        {"texture", e.texture},
                        {"background", e.background},
                        {"texture_strength", e.texture_strength},
                        {"brightness", e.brightness},
                        {"tint", e.tint},
                        {"blur_sigma", e.blur_sigma},
                        {"noise_sigma", e.noise_sigma}}}};
  if (g.frames_per_sequence > 1) j["frames_per_sequence"] = g.frames_per_sequence;  // still sets keep their old record
  return j;
}
}  // namespace

bool generate_scenes(const GenerateOptions& g) {
  CSEG_CHECK(!g.out_dir.empty(), "fmnist-scenes: an output folder is required");
  CSEG_CHECK(g.train >= 0 && g.val >= 0 && g.test >= 0, "fmnist-scenes: scene counts must be >= 0");
  CSEG_CHECK(g.frames_per_sequence >= 1, "fmnist-scenes: frames per sequence must be >= 1 (got {})",
             g.frames_per_sequence);
  CSEG_CHECK(g.scene.min_items >= 1 && g.scene.min_items <= g.scene.max_items,
             "fmnist-scenes: need 1 <= min_items <= max_items");
  const fs::path out(g.out_dir);
  const auto meta = options_json(g);
  const fs::path meta_path = out / "scenes.json";
  if (fs::exists(meta_path)) {
    std::ifstream in(meta_path);
    nlohmann::json old = nlohmann::json::parse(in, nullptr, false);
    if (!old.is_discarded() && old == meta) return false;
  }
  const std::string dir = g.fmnist_dir.empty() ? default_fmnist_dir() : g.fmnist_dir;
  IdxSet train = read_idx(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz");
  IdxSet t10k = read_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz");
  fs::remove(meta_path);
  for (const char* sub : {"JPEGImages", "SegmentationClass", "SaliencyMap", "ImageSets/Segmentation"})
    fs::create_directories(out / sub);
  const Palette palette = label_space("fmnist_scenes").palette;
  Palette saliency_palette(256, {0, 0, 0});
  saliency_palette[1] = {255, 255, 255};
  struct Split {
    const char* name;
    int n;
    const IdxSet* photos;
    int first, count;
  };
  const int half = t10k.count / 2;
  const Split splits[] = {{"train", g.train, &train, 0, train.count},
                          {"val", g.val, &t10k, 0, half},
                          {"test", g.test, &t10k, half, t10k.count - half}};
  const int frames = g.frames_per_sequence;
  if (frames > 1) {
    for (const char* sub : {"Depth", "Flow", "ImageSets/Sequences"}) fs::create_directories(out / sub);
  }
  auto write_scene = [&](const std::string& id, const Scene& s) {
    cv::Mat rgb(s.height, s.width, CV_8UC3, const_cast<uint8_t*>(s.rgb.data()));
    cv::Mat lab(s.height, s.width, CV_8UC1, const_cast<uint8_t*>(s.label.data()));
    write_jpeg((out / "JPEGImages" / (id + ".jpg")).string(), rgb, 95);
    write_label_png((out / "SegmentationClass" / (id + ".png")).string(), lab, palette);
    // Saliency (for SSUL): every item pixel, its 255 border included. Ideal saliency: a
    // detector's maps on real photos are noisier.
    cv::Mat sal = (lab != 0) / 255;
    write_label_png((out / "SaliencyMap" / (id + ".png")).string(), sal, saliency_palette);
  };
  for (size_t si = 0; si < 3; ++si) {
    const Split& sp = splits[si];
    std::vector<std::string> ids(sp.n);
    if (frames <= 1) {
      parallel_for(sp.n, g.threads, [&](size_t i) {
        ids[i] = fmt::format("{}_{:06d}", sp.name, i);
        write_scene(ids[i], compose_scene(*sp.photos, sp.first, sp.count, g.scene, core::mix_seed(g.seed, si + 1, i)));
      });
    } else {
      // Scene i is frame i % frames of sequence i / frames; the last sequence may be shorter.
      const int sequences = (sp.n + frames - 1) / frames;
      parallel_for(sequences, g.threads, [&](size_t q) {
        const int first = static_cast<int>(q) * frames, length = std::min(frames, sp.n - first);
        auto video = compose_sequence(*sp.photos, sp.first, sp.count, g.scene, length,
                                      core::mix_seed(g.seed, si + 1, 0x5e9000000ull + q));
        for (int f = 0; f < length; ++f) {
          const std::string id = fmt::format("{}_s{:04d}_f{:03d}", sp.name, q, f);
          ids[first + f] = id;
          const Frame& fr = video[f];
          write_scene(id, fr);
          cv::Mat depth(fr.height, fr.width, CV_32FC1, const_cast<float*>(fr.depth.data()));
          write_depth_png((out / "Depth" / (id + ".png")).string(), depth);
          if (f + 1 < length) {
            cv::Mat flow(fr.height, fr.width, CV_32FC2, const_cast<float*>(fr.flow.data()));
            write_flo((out / "Flow" / (id + ".flo")).string(), flow);
          }
        }
      });
      std::ofstream seq(out / "ImageSets" / "Sequences" / (std::string(sp.name) + ".txt"));
      for (int q = 0; q * frames < sp.n; ++q) {
        for (int f = q * frames; f < std::min(sp.n, (q + 1) * frames); ++f)
          seq << (f > q * frames ? " " : "") << ids[f];
        seq << "\n";
      }
    }
    std::ofstream list(out / "ImageSets" / "Segmentation" / (std::string(sp.name) + ".txt"));
    for (const auto& id : ids) list << id << "\n";
  }
  std::ofstream(meta_path) << meta.dump(2) << "\n";  // written last: marks the set complete
  return true;
}

}  // namespace cseg::data::fmnist
