#include "cseg/scenarios/task_table.h"

#include <numeric>
#include <set>
#include <sstream>

#include "cseg/core/error.h"

namespace cseg::scenarios {

const std::vector<NamedTask>& named_tasks() {
  // Pascal VOC (protocols.md §2). Generic specs reproduce most of them; they are listed so that
  // `cseg list` shows them and so aliases (15-5s, 10-10s) resolve.
  static const std::vector<NamedTask> table{
      {"voc", "19-1", "0-19|20"},
      {"voc", "19-1b", "0-4,6-20|5"},
      {"voc", "15-5", "0-15|16-20"},
      {"voc", "15-1", "0-15|16|17|18|19|20"},
      {"voc", "15-5s", "0-15|16|17|18|19|20"},
      {"voc", "10-5-5", "0-10|11-15|16-20"},
      {"voc", "10-10", "0-10|11-20"},
      {"voc", "10-1", "0-10|11|12|13|14|15|16|17|18|19|20"},
      {"voc", "10-10s", "0-10|11|12|13|14|15|16|17|18|19|20"},
      {"voc", "5-5", "0-5|6-10|11-15|16-20"},
      {"voc", "5-3", "0-5|6-8|9-11|12-14|15-17|18-20"},
      {"voc", "5-1", "0-5|6|7|8|9|10|11|12|13|14|15|16|17|18|19|20"},
      {"voc", "2-2", "0-2|3-4|5-6|7-8|9-10|11-12|13-14|15-16|17-18|19-20"},
      {"voc", "2-1", "0-2|3|4|5|6|7|8|9|10|11|12|13|14|15|16|17|18|19|20"},
      // ADE20K (150 classes + background 0).
      {"ade20k", "100-50", "0-100|101-150"},
      {"ade20k", "100-10", "0-100|101-110|111-120|121-130|131-140|141-150"},
      {"ade20k", "100-5", "0-100|101-105|106-110|111-115|116-120|121-125|126-130|131-135|136-140|141-145|146-150"},
      {"ade20k", "50-50", "0-50|51-100|101-150"},
      {"ade20k", "50", "0-50|51-100|101-150"},
      {"ade20k", "50-20", "0-50|51-70|71-90|91-110|111-130|131-150"},
  };
  return table;
}

namespace {

std::vector<int> parse_ints(const std::string& text, char sep, const std::string& what) {
  std::vector<int> out;
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, sep);) {
    try {
      size_t used = 0;
      int v = std::stoi(part, &used);
      CSEG_CHECK(used == part.size() && v >= 0, "{}: '{}' is not a non-negative integer", what, part);
      out.push_back(v);
    } catch (const std::logic_error&) {
      fail("{}: '{}' is not a non-negative integer", what, part);
    }
  }
  return out;
}

TaskSteps parse_table(const std::string& table) {
  TaskSteps steps;
  std::stringstream ss(table);
  for (std::string step; std::getline(ss, step, '|');) {
    std::vector<int> labels;
    std::stringstream ps(step);
    for (std::string item; std::getline(ps, item, ',');) {
      auto dash = item.find('-');
      if (dash == std::string::npos) {
        labels.push_back(std::stoi(item));
      } else {
        int a = std::stoi(item.substr(0, dash)), b = std::stoi(item.substr(dash + 1));
        for (int v = a; v <= b; ++v) labels.push_back(v);
      }
    }
    steps.push_back(labels);
  }
  return steps;
}

std::string known_tasks(const std::string& dataset) {
  std::vector<std::string> names{"offline", "a-b", "a-b-c..."};
  for (const auto& t : named_tasks())
    if (t.dataset == dataset) names.push_back(t.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

void validate_steps(const TaskSteps& steps, int num_classes, const std::string& what) {
  CSEG_CHECK(!steps.empty(), "{}: no steps", what);
  std::set<int> seen;
  for (size_t k = 0; k < steps.size(); ++k) {
    CSEG_CHECK(!steps[k].empty(), "{}: step {} has no classes", what, k);
    for (int c : steps[k]) {
      CSEG_CHECK(c >= 0 && c < num_classes, "{}: class {} in step {} is outside 0..{}", what, c, k, num_classes - 1);
      CSEG_CHECK(seen.insert(c).second, "{}: class {} appears in more than one step", what, c);
    }
  }
  CSEG_CHECK(seen.count(0) && std::count(steps[0].begin(), steps[0].end(), 0), "{}: background 0 must belong to step 0",
             what);
  CSEG_CHECK(static_cast<int>(seen.size()) == num_classes, "{}: the steps cover {} of the dataset's {} classes", what,
             seen.size(), num_classes);
}

TaskSteps resolve_task(const std::string& dataset, const std::string& task, int num_classes) {
  const std::string what = fmt::format("task '{}' on {}", task, dataset);
  TaskSteps steps;
  for (const auto& t : named_tasks())
    if (t.dataset == dataset && t.name == task) steps = parse_table(t.table);
  if (steps.empty() && task == "offline") {
    steps.emplace_back(num_classes);
    std::iota(steps[0].begin(), steps[0].end(), 0);
  }
  if (steps.empty()) {
    CSEG_CHECK(!task.empty() && task.find('-') != std::string::npos, "unknown task '{}' for dataset {}; known: {}",
               task, dataset, known_tasks(dataset));
    std::vector<int> sizes = parse_ints(task, '-', what);
    CSEG_CHECK(sizes.size() >= 2 && std::all_of(sizes.begin(), sizes.end(), [](int s) { return s > 0; }),
               "{}: expected a-b or a-b-c... with positive sizes; known: {}", what, known_tasks(dataset));
    const int fg = num_classes - 1;
    std::vector<int> blocks{sizes[0]};
    if (sizes.size() == 2) {
      CSEG_CHECK(sizes[0] < fg && (fg - sizes[0]) % sizes[1] == 0,
                 "{}: {} foreground classes do not split into {} then blocks of {}", what, fg, sizes[0], sizes[1]);
      for (int left = fg - sizes[0]; left > 0; left -= sizes[1]) blocks.push_back(sizes[1]);
    } else {
      blocks = sizes;
      int total = std::accumulate(sizes.begin(), sizes.end(), 0);
      CSEG_CHECK(total == fg, "{}: the blocks add up to {} classes but the dataset has {} foreground classes", what,
                 total, fg);
    }
    int next = 1;
    for (size_t k = 0; k < blocks.size(); ++k) {
      std::vector<int> s;
      if (k == 0) s.push_back(0);
      for (int i = 0; i < blocks[k]; ++i) s.push_back(next++);
      steps.push_back(s);
    }
  }
  validate_steps(steps, num_classes, what);
  return steps;
}

TaskSteps apply_order(const TaskSteps& natural, const std::vector<int>& order, int num_classes) {
  CSEG_CHECK(static_cast<int>(order.size()) == num_classes && !order.empty() && order[0] == 0,
             "scenario.order must list all {} classes, background 0 first (got {} entries)", num_classes, order.size());
  std::vector<int> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < num_classes; ++i)
    CSEG_CHECK(sorted[i] == i, "scenario.order must be a permutation of 0..{}", num_classes - 1);
  // The natural table gives the step sizes; the order says which classes fill them.
  TaskSteps out;
  size_t pos = 0;
  for (const auto& step : natural) {
    std::vector<int> s(order.begin() + pos, order.begin() + pos + step.size());
    pos += step.size();
    out.push_back(s);
  }
  return out;
}

}  // namespace cseg::scenarios
