#pragma once
/// Class names of the datasets cseg knows (index = label; 0 is background where the CSS papers
/// use one).
#include <string>
#include <vector>

namespace cseg::data {

const std::vector<std::string>& voc_class_names();         ///< 21: background + 20
const std::vector<std::string>& ade20k_class_names();      ///< 151: background (unlabelled) + 150
const std::vector<std::string>& cityscapes_class_names();  ///< 19 train ids
const std::vector<std::string>& fmnist_scene_class_names();///< 11: background + 10 FMNIST classes

}  // namespace cseg::data
