#include "cseg/data/label_spaces.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cseg/core/error.h"

namespace cseg::data {

namespace {

using Rgb = std::array<uint8_t, 3>;

// Tables of names and colours laid out by hand (several per line), so clang-format leaves them.
// clang-format off
std::vector<std::string> voc_names() {
  const std::vector<std::string> names{
      "background", "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",
      "car",        "cat",       "chair",   "cow",   "diningtable", "dog",    "horse",
      "motorbike",  "person",    "pottedplant", "sheep", "sofa",    "train",  "tvmonitor"};
  return names;
}

std::vector<std::string> ade20k_names() {
  // SceneParsing-150 order (objectInfo150); 0 is the unlabelled background of the CSS papers.
  const std::vector<std::string> names{
      "background", "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed",
      "windowpane", "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain",
      "plant", "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea",
      "mirror", "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp",
      "bathtub", "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers",
      "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
      "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river",
      "bridge", "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
      "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
      "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier", "awning",
      "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel", "pole",
      "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van",
      "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool",
      "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball",
      "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
      "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light",
      "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower",
      "radiator", "glass", "clock", "flag"};
  return names;
}

std::vector<std::string> cityscapes_names() {
  const std::vector<std::string> names{
      "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
      "motorcycle", "bicycle"};
  return names;
}

std::vector<std::string> fmnist_scenes_names() {
  const std::vector<std::string> names{"background", "t-shirt/top", "trouser", "pullover",
                                              "dress",      "coat",        "sandal",  "shirt",
                                              "sneaker",    "bag",         "ankle boot"};
  return names;
}

std::vector<std::string> nyu40_names() {
  std::vector<std::string> names{"unlabelled", "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floormat", "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel", "showercurtain", "box", "whiteboard", "person", "nightstand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop"};
  return names;
}

/// A palette with `colours` for labels 0.., `ignore` for 255, and the VOC colour map for the
/// unused values in between (so a stray label still shows in a colour of its own).
Palette make_palette(const std::vector<Rgb>& colours, Rgb ignore) {
  Palette p = voc_palette();
  for (size_t i = 0; i < colours.size(); ++i) p[i] = colours[i];
  p[255] = ignore;
  return p;
}
// clang-format on

constexpr Rgb kVocIgnore{224, 224, 192};

std::vector<LabelSpace> make_label_spaces() {
  std::vector<LabelSpace> spaces;
  // clang-format off
  spaces.push_back({"voc", voc_names(), voc_palette()});
  // ADE20K: mmsegmentation's 150 colours for labels 1..150; 0 (unlabelled, the CSS background) black.
  spaces.push_back({"ade20k", ade20k_names(), make_palette({{0, 0, 0},
      {120, 120, 120}, {180, 120, 120}, {6, 230, 230}, {80, 50, 50}, {4, 200, 3}, {120, 120, 80},
      {140, 140, 140}, {204, 5, 255}, {230, 230, 230}, {4, 250, 7}, {224, 5, 255}, {235, 255, 7},
      {150, 5, 61}, {120, 120, 70}, {8, 255, 51}, {255, 6, 82}, {143, 255, 140}, {204, 255, 4},
      {255, 51, 7}, {204, 70, 3}, {0, 102, 200}, {61, 230, 250}, {255, 6, 51}, {11, 102, 255},
      {255, 7, 71}, {255, 9, 224}, {9, 7, 230}, {220, 220, 220}, {255, 9, 92}, {112, 9, 255},
      {8, 255, 214}, {7, 255, 224}, {255, 184, 6}, {10, 255, 71}, {255, 41, 10}, {7, 255, 255},
      {224, 255, 8}, {102, 8, 255}, {255, 61, 6}, {255, 194, 7}, {255, 122, 8}, {0, 255, 20},
      {255, 8, 41}, {255, 5, 153}, {6, 51, 255}, {235, 12, 255}, {160, 150, 20}, {0, 163, 255},
      {140, 140, 140}, {250, 10, 15}, {20, 255, 0}, {31, 255, 0}, {255, 31, 0}, {255, 224, 0},
      {153, 255, 0}, {0, 0, 255}, {255, 71, 0}, {0, 235, 255}, {0, 173, 255}, {31, 0, 255},
      {11, 200, 200}, {255, 82, 0}, {0, 255, 245}, {0, 61, 255}, {0, 255, 112}, {0, 255, 133},
      {255, 0, 0}, {255, 163, 0}, {255, 102, 0}, {194, 255, 0}, {0, 143, 255}, {51, 255, 0},
      {0, 82, 255}, {0, 255, 41}, {0, 255, 173}, {10, 0, 255}, {173, 255, 0}, {0, 255, 153},
      {255, 92, 0}, {255, 0, 255}, {255, 0, 245}, {255, 0, 102}, {255, 173, 0}, {255, 0, 20},
      {255, 184, 184}, {0, 31, 255}, {0, 255, 61}, {0, 71, 255}, {255, 0, 204}, {0, 255, 194},
      {0, 255, 82}, {0, 10, 255}, {0, 112, 255}, {51, 0, 255}, {0, 194, 255}, {0, 122, 255},
      {0, 255, 163}, {255, 153, 0}, {0, 255, 10}, {255, 112, 0}, {143, 255, 0}, {82, 0, 255},
      {163, 255, 0}, {255, 235, 0}, {8, 184, 170}, {133, 0, 255}, {0, 255, 92}, {184, 0, 255},
      {255, 0, 31}, {0, 184, 255}, {0, 214, 255}, {255, 0, 112}, {92, 255, 0}, {0, 224, 255},
      {112, 224, 255}, {70, 184, 160}, {163, 0, 255}, {153, 0, 255}, {71, 255, 0}, {255, 0, 163},
      {255, 204, 0}, {255, 0, 143}, {0, 255, 235}, {133, 255, 0}, {255, 0, 235}, {245, 0, 255},
      {255, 0, 122}, {255, 245, 0}, {10, 190, 212}, {214, 255, 0}, {0, 204, 255}, {20, 0, 255},
      {255, 255, 0}, {0, 153, 255}, {0, 41, 255}, {0, 255, 204}, {41, 0, 255}, {41, 255, 0},
      {173, 0, 255}, {0, 245, 255}, {71, 0, 255}, {122, 0, 255}, {0, 255, 184}, {0, 92, 255},
      {184, 255, 0}, {0, 133, 255}, {255, 214, 0}, {25, 194, 194}, {102, 255, 0}, {92, 0, 255},
  }, kVocIgnore)});
  // Cityscapes train ids 0..18 in the official colours; ignore black, as in the dataset's own tools.
  spaces.push_back({"cityscapes", cityscapes_names(), make_palette({
      {128, 64, 128}, {244, 35, 232}, {70, 70, 70}, {102, 102, 156}, {190, 153, 153}, {153, 153, 153},
      {250, 170, 30}, {220, 220, 0}, {107, 142, 35}, {152, 251, 152}, {70, 130, 180}, {220, 20, 60},
      {255, 0, 0}, {0, 0, 142}, {0, 0, 70}, {0, 60, 100}, {0, 80, 100}, {0, 0, 230},
      {119, 11, 32},
  }, {0, 0, 0})});
  // NYU-40, in the colours the NYU/ScanNet tools use; 0 (unlabelled) black.
  spaces.push_back({"nyu40", nyu40_names(), make_palette({{0, 0, 0},
      {174, 199, 232}, {152, 223, 138}, {31, 119, 180}, {255, 187, 120}, {188, 189, 34}, {140, 86, 75},
      {255, 152, 150}, {214, 39, 40}, {197, 176, 213}, {148, 103, 189}, {196, 156, 148}, {23, 190, 207},
      {178, 76, 76}, {247, 182, 210}, {66, 188, 102}, {219, 219, 141}, {140, 57, 197}, {202, 185, 52},
      {51, 176, 203}, {200, 54, 131}, {92, 193, 61}, {78, 71, 183}, {172, 114, 82}, {255, 127, 14},
      {91, 163, 138}, {153, 98, 156}, {140, 153, 101}, {158, 218, 229}, {100, 125, 154}, {178, 127, 135},
      {120, 185, 128}, {146, 111, 194}, {44, 160, 44}, {112, 128, 144}, {96, 207, 209}, {227, 119, 194},
      {213, 92, 176}, {94, 106, 211}, {82, 84, 163}, {100, 85, 144},
  }, kVocIgnore)});
  // FMNIST-Scenes: black background, then ten well-separated hues (matplotlib's tab10 order).
  spaces.push_back({"fmnist_scenes", fmnist_scenes_names(), make_palette({{0, 0, 0},
      {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75},
      {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
  }, kVocIgnore)});
  // clang-format on
  for (const auto& s : spaces) CSEG_CHECK(s.class_names.size() < 255, "label space {} is too large", s.name);
  return spaces;
}

const std::vector<LabelSpace>& all_spaces() {
  static const std::vector<LabelSpace> spaces = make_label_spaces();
  return spaces;
}

}  // namespace

const LabelSpace* find_label_space(const std::string& name) {
  for (const auto& s : all_spaces())
    if (s.name == name) return &s;
  return nullptr;
}

const LabelSpace& label_space(const std::string& name) {
  if (const auto* s = find_label_space(name)) return *s;
  fail("unknown label space '{}'; known: {}", name, fmt::join(label_space_names(), ", "));
}

std::vector<std::string> label_space_names() {
  std::vector<std::string> names;
  for (const auto& s : all_spaces()) names.push_back(s.name);
  return names;
}

}  // namespace cseg::data
