#include "cseg/weights/torch_file.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "cseg/core/error.h"

namespace cseg::weights {

using Kind = PyValue::Kind;

const PyValue* PyValue::get(const std::string& key) const {
  if (kind != Kind::Dict) return nullptr;
  for (const auto& [k, v] : dict)
    if (k->kind == Kind::String && k->s == key) return v.get();
  return nullptr;
}

namespace {

PyValuePtr make(Kind k) {
  auto v = std::make_shared<PyValue>();
  v->kind = k;
  return v;
}
PyValuePtr make_int(int64_t i) {
  auto v = make(Kind::Int);
  v->i = i;
  return v;
}
PyValuePtr make_str(Kind k, std::string s) {
  auto v = make(k);
  v->s = std::move(s);
  return v;
}

/// `torch.FloatStorage` & co. -> dtype. These legacy names are what torch.save writes for the
/// storage type in every release up to 2.x.
std::optional<torch::Dtype> storage_dtype(const std::string& global) {
  static const std::map<std::string, torch::Dtype> types{
      {"torch.FloatStorage", torch::kFloat}, {"torch.DoubleStorage", torch::kDouble},
      {"torch.HalfStorage", torch::kHalf},   {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kLong},   {"torch.IntStorage", torch::kInt},
      {"torch.ShortStorage", torch::kShort}, {"torch.CharStorage", torch::kChar},
      {"torch.ByteStorage", torch::kByte},   {"torch.BoolStorage", torch::kBool}};
  auto it = types.find(global);
  if (it == types.end()) return std::nullopt;
  return it->second;
}

/// Looks up a storage by the persistent id torch.save wrote for it.
using StorageLoader = std::function<PyValuePtr(const PyValue& pid)>;

/// The pickle memo lets one value be referenced many times, so a crafted file can make a
/// container hold itself or nest a million levels deep; either would overflow the stack in every
/// recursive walk of the result (and in its destructor). torch.save's values nest a few levels.
constexpr size_t kMaxNesting = 100;

/// Child `k` of a container (list/tuple items, then dict keys and values), nullptr past the end.
const PyValue* child_at(const PyValue& v, size_t k) {
  if (k < v.items.size()) return v.items[k].get();
  k -= v.items.size();
  if (k < 2 * v.dict.size()) return k % 2 == 0 ? v.dict[k / 2].first.get() : v.dict[k / 2].second.get();
  return nullptr;
}

/// Checks that `root` is acyclic and at most kMaxNesting deep (without recursing itself) and adds
/// every value it reaches to `reached`.
void check_nesting(const PyValue& root, const std::string& path, std::unordered_set<const PyValue*>& reached) {
  struct Frame {
    const PyValue* value;
    size_t next_child;
  };
  std::unordered_set<const PyValue*> open{&root};
  std::vector<Frame> stack{{&root, 0}};
  while (!stack.empty()) {
    const PyValue* child = child_at(*stack.back().value, stack.back().next_child++);
    if (!child) {
      open.erase(stack.back().value);
      reached.insert(stack.back().value);
      stack.pop_back();
      continue;
    }
    if (open.count(child)) fail("{}: malformed pickle (a container holds itself)", path);
    if (reached.count(child)) continue;
    if (stack.size() >= kMaxNesting)
      fail("{}: malformed pickle (values nest more than {} levels deep)", path, kMaxNesting);
    open.insert(child);
    stack.push_back({child, 0});
  }
}

/// A pickle virtual machine for the subset of opcodes that torch.save emits.
class Unpickler {
 public:
  Unpickler(const std::string& path, const char* data, size_t size, StorageLoader storages)
      : path_(path), data_(data), size_(size), storages_(std::move(storages)) {}
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;
  /// Values no returned result reaches (a failed run's, or popped ones) may form cycles or deep
  /// chains: their links are cut here so that each is freed on its own, without recursion.
  ~Unpickler() {
    for (const auto& v : created_)
      if (!returned_.count(v.get())) {
        v->items.clear();
        v->dict.clear();
      }
  }

  /// Runs from `pos` to the next STOP; returns the value and advances `pos` past it.
  PyValuePtr run(size_t& pos) {
    pos_ = pos;
    stack_.clear();
    marks_.clear();
    memo_.clear();
    while (true) {
      const uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;    // PROTO
        case 0x95: bytes(8); break;  // FRAME (size hint only)
        case '.': {                  // STOP
          pos = pos_;
          auto result = pop();
          check_nesting(*result, path_, returned_);
          return result;
        }
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case 'N': push(make(Kind::None)); break;
        case 0x88: push_bool(true); break;
        case 0x89: push_bool(false); break;
        case 'J': push(make_int(int32_t(le(4)))); break;
        case 'K': push(make_int(int64_t(le(1)))); break;
        case 'M': push(make_int(int64_t(le(2)))); break;
        case 0x8a: push(long_int(byte())); break;                       // LONG1
        case 0x8b: push(long_int(size_t(le(4)))); break;                // LONG4
        case 'G': push_float(); break;                                  // BINFLOAT
        case 'X': push(make_str(Kind::String, bytes(le(4)))); break;    // BINUNICODE
        case 0x8c: push(make_str(Kind::String, bytes(byte()))); break;  // SHORT_BINUNICODE
        case 0x8d: push(make_str(Kind::String, bytes(le(8)))); break;   // BINUNICODE8
        case 'T': push(make_str(Kind::String, bytes(le(4)))); break;    // BINSTRING (py2 str)
        case 'U': push(make_str(Kind::String, bytes(byte()))); break;   // SHORT_BINSTRING
        case 'B': push(make_str(Kind::Bytes, bytes(le(4)))); break;     // BINBYTES
        case 'C': push(make_str(Kind::Bytes, bytes(byte()))); break;    // SHORT_BINBYTES
        case ')': push(make(Kind::Tuple)); break;
        case ']': push(make(Kind::List)); break;
        case '}': push(make(Kind::Dict)); break;
        case 0x8f: push(make(Kind::List)); break;  // EMPTY_SET (kept as a list)
        case 't': push(tuple(pop_mark())); break;
        case 0x85: push(tuple(pop_n(1))); break;
        case 0x86: push(tuple(pop_n(2))); break;
        case 0x87: push(tuple(pop_n(3))); break;
        case 'l': {  // LIST
          auto v = make(Kind::List);
          v->items = pop_mark();
          push(v);
          break;
        }
        case 'a': {  // APPEND
          auto item = pop();
          top(Kind::List)->items.push_back(item);
          break;
        }
        case 'e':     // APPENDS
        case 0x90: {  // ADDITEMS
          auto items = pop_mark();
          auto list = top(Kind::List);
          list->items.insert(list->items.end(), items.begin(), items.end());
          break;
        }
        case 's': {  // SETITEM
          auto value = pop();
          auto key = pop();
          top(Kind::Dict)->dict.emplace_back(key, value);
          break;
        }
        case 'u': {  // SETITEMS
          auto items = pop_mark();
          auto dict = top(Kind::Dict);
          for (size_t k = 0; k + 1 < items.size(); k += 2) dict->dict.emplace_back(items[k], items[k + 1]);
          break;
        }
        case 'c': {  // GLOBAL
          std::string module = line(), name = line();
          push(make_str(Kind::Global, module + "." + name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(), module = pop();
          push(make_str(Kind::Global, module->s + "." + name->s));
          break;
        }
        case 'q': memo_[le(1)] = peek(); break;          // BINPUT
        case 'r': memo_[le(4)] = peek(); break;          // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = peek(); break;  // MEMOIZE
        case 'h': push(memo(le(1))); break;              // BINGET
        case 'j': push(memo(le(4))); break;              // LONG_BINGET
        case 'R': {                                      // REDUCE
          auto args = pop();
          auto fn = pop();
          push(reduce(*fn, *args));
          break;
        }
        case 0x81: {  // NEWOBJ
          auto args = pop();
          auto cls = pop();
          push(object(cls, args));
          break;
        }
        case 'b': {  // BUILD: set state
          auto state = pop();
          auto target = peek();
          if (target->kind == Kind::Object) target->items.push_back(state);
          break;  // dicts (OrderedDict._metadata) and tensors keep nothing from BUILD
        }
        case 'Q': {  // BINPERSID
          auto pid = pop();
          push(storages_(*pid));
          break;
        }
        case '0': pop(); break;         // POP
        case '1': pop_mark(); break;    // POP_MARK
        case '2': push(peek()); break;  // DUP
        default:
          fail("{}: unsupported pickle opcode 0x{:02x} at byte {} (is this a torch.save file?)", path_, op, pos_ - 1);
      }
    }
  }

 private:
  uint8_t byte() {
    if (pos_ >= size_) fail("{}: truncated pickle data (ended at byte {})", path_, pos_);
    return uint8_t(data_[pos_++]);
  }
  std::string bytes(uint64_t n) {
    if (n > size_ - pos_) fail("{}: truncated pickle data (needs {} bytes at byte {})", path_, n, pos_);
    std::string s(data_ + pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t le(int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= uint64_t(byte()) << (8 * k);
    return v;
  }
  std::string line() {
    std::string s;
    for (char c = char(byte()); c != '\n'; c = char(byte())) s += c;
    return s;
  }
  PyValuePtr long_int(size_t n) {
    std::string raw = bytes(n);
    if (n > 8) return make_str(Kind::BigInt, raw);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= uint64_t(uint8_t(raw[k])) << (8 * k);
    if (n > 0 && n < 8 && (uint8_t(raw[n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
    return make_int(int64_t(v));
  }
  void push_bool(bool b) {
    auto v = make(Kind::Bool);
    v->b = b;
    push(v);
  }
  void push_float() {
    uint64_t bits = 0;
    for (int k = 0; k < 8; ++k) bits = (bits << 8) | byte();  // big-endian
    auto v = make(Kind::Float);
    std::memcpy(&v->f, &bits, 8);
    push(v);
  }
  void push(PyValuePtr v) {
    created_.push_back(v);
    stack_.push_back(std::move(v));
  }
  PyValuePtr pop() {
    if (stack_.empty()) fail("{}: malformed pickle (stack underflow at byte {})", path_, pos_);
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PyValuePtr peek() {
    if (stack_.empty()) fail("{}: malformed pickle (empty stack at byte {})", path_, pos_);
    return stack_.back();
  }
  PyValuePtr top(Kind k) {
    auto v = peek();
    if (v->kind != k && !(k == Kind::Dict && v->kind == Kind::Object))
      fail("{}: malformed pickle (unexpected container at byte {})", path_, pos_);
    return v;
  }
  std::vector<PyValuePtr> pop_n(size_t n) {
    if (stack_.size() < n) fail("{}: malformed pickle (stack underflow at byte {})", path_, pos_);
    std::vector<PyValuePtr> out(stack_.end() - long(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return out;
  }
  std::vector<PyValuePtr> pop_mark() {
    if (marks_.empty()) fail("{}: malformed pickle (no MARK before byte {})", path_, pos_);
    const size_t m = marks_.back();
    marks_.pop_back();
    return pop_n(stack_.size() - m);
  }
  PyValuePtr memo(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail("{}: malformed pickle (memo {} unset)", path_, k);
    return it->second;
  }
  static PyValuePtr tuple(std::vector<PyValuePtr> items) {
    auto v = make(Kind::Tuple);
    v->items = std::move(items);
    return v;
  }
  static PyValuePtr object(PyValuePtr fn, PyValuePtr args) {
    auto v = make(Kind::Object);
    v->s = fn->kind == Kind::Global ? fn->s : "?";
    v->items = {std::move(fn), std::move(args)};
    return v;
  }
  const PyValue& arg(const PyValue& args, size_t k, const char* fn) {
    if (args.kind != Kind::Tuple || args.items.size() <= k) fail("{}: malformed call to {}", path_, fn);
    return *args.items[k];
  }
  static std::vector<int64_t> ints(const PyValue& tuple) {
    std::vector<int64_t> out;
    for (const auto& v : tuple.items) out.push_back(v->i);
    return out;
  }

  /// A tensor viewing `storage` (a flat 1-D tensor) with the given geometry, which must lie
  /// inside it (checked without overflow: the numbers come from the file).
  torch::Tensor rebuild(const PyValue& storage, int64_t offset, const PyValue& size, const PyValue& stride) {
    if (storage.kind != Kind::Storage) fail("{}: tensor without a storage", path_);
    if (size.kind != Kind::Tuple || stride.kind != Kind::Tuple || size.items.size() != stride.items.size() ||
        size.items.size() > 64)
      fail("{}: malformed tensor (size and stride are not tuples of one length)", path_);
    auto sizes = ints(size), strides = ints(stride);
    const auto negative = [](int64_t v) { return v < 0; };
    if (offset < 0 || std::any_of(sizes.begin(), sizes.end(), negative) ||
        std::any_of(strides.begin(), strides.end(), negative))
      fail("{}: malformed tensor (negative offset, size or stride)", path_);
    const bool empty = std::find(sizes.begin(), sizes.end(), 0) != sizes.end();
    int64_t last = offset;
    for (size_t d = 0; d < sizes.size() && !empty; ++d) {
      int64_t reach = 0;
      if (__builtin_mul_overflow(sizes[d] - 1, strides[d], &reach) || __builtin_add_overflow(last, reach, &last))
        fail("{}: malformed tensor (its extent overflows 64 bits)", path_);
    }
    if (!empty && last >= storage.tensor.numel())
      fail("{}: a tensor reaches element {} of a storage of {}", path_, last, storage.tensor.numel());
    return storage.tensor.as_strided(sizes, strides, offset);
  }

  PyValuePtr reduce(const PyValue& fn, const PyValue& args) {
    const std::string& name = fn.kind == Kind::Global ? fn.s : std::string();
    if (name == "collections.OrderedDict" || name == "builtins.dict") {
      auto d = make(Kind::Dict);
      if (args.kind == Kind::Tuple && !args.items.empty() && args.items[0]->kind == Kind::List)
        for (const auto& kv : args.items[0]->items)
          if (kv->items.size() == 2) d->dict.emplace_back(kv->items[0], kv->items[1]);
      return d;
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      auto t = make(Kind::Tensor);
      t->tensor = rebuild(arg(args, 0, "_rebuild_tensor"), arg(args, 1, "_rebuild_tensor").i,
                          arg(args, 2, "_rebuild_tensor"), arg(args, 3, "_rebuild_tensor"));
      return t;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      const PyValue& data = arg(args, 0, "_rebuild_parameter");
      auto t = make(Kind::Tensor);
      t->tensor = data.tensor;
      return t;
    }
    if (name.rfind("torch._utils._rebuild_qtensor", 0) == 0 || name.rfind("torch._utils._rebuild_sparse", 0) == 0)
      fail("{}: {} tensors are not supported; save dense float weights", path_, name);
    // Any other callable: keep an opaque object (e.g. argparse.Namespace, numpy scalars).
    return object(std::make_shared<PyValue>(fn), std::make_shared<PyValue>(args));
  }

  std::string path_;
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  StorageLoader storages_;
  std::vector<PyValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PyValuePtr> memo_;
  std::vector<PyValuePtr> created_;              ///< every value made, for the destructor
  std::unordered_set<const PyValue*> returned_;  ///< values the results reach
};

/// Parses the persistent id ('storage', type, key, location, numel[, view]) of a storage.
struct StorageId {
  torch::Dtype dtype;
  std::string key;
  int64_t numel = 0;
};
StorageId parse_storage_id(const PyValue& pid, const std::string& path) {
  if (pid.kind != Kind::Tuple || pid.items.size() < 5 || !pid.items[0]->is_string() || pid.items[0]->s != "storage")
    fail("{}: unexpected persistent id in the pickle (not a tensor storage)", path);
  const auto& type = *pid.items[1];
  auto dtype = storage_dtype(type.s);
  if (!dtype) fail("{}: unsupported storage type '{}'", path, type.s);
  const auto& key = *pid.items[2];
  return {*dtype, key.is_string() ? key.s : std::to_string(key.i), pid.items[4]->i};
}

/// A storage's claimed element count checked against the bytes that can hold it, before anything
/// is allocated: a crafted file may claim terabytes. `available` shrinks by what it takes, so that
/// many storages cannot together claim more than the file holds either.
void check_storage_size(const std::string& path, const StorageId& id, size_t& available) {
  const size_t element = c10::elementSize(id.dtype);
  if (id.numel < 0 || size_t(id.numel) > available / element)
    fail("{}: storage '{}' claims {} elements of {} bytes, more than the {} bytes the file holds for it", path, id.key,
         id.numel, element, available);
  available -= size_t(id.numel) * element;
}

uint64_t little_endian(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int k = 0; k < n; ++k) v |= uint64_t(p[k]) << (8 * k);
  return v;
}

/// LibTorch's zip reader allocates each entry's claimed uncompressed size before extracting it,
/// so a file of a few hundred bytes could ask for terabytes. torch.save stores its entries
/// uncompressed: no entry may claim more than the whole file. Reads the central directory (zip64
/// included); a directory this cannot parse is left to LibTorch's reader to reject.
void check_zip_entry_sizes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail("{}: cannot open the weights file", path);
  const uint64_t file_size = uint64_t(in.tellg());
  const auto read_at = [&](uint64_t offset, size_t n) {
    std::vector<unsigned char> buf;
    if (offset > file_size || n > file_size - offset) return buf;
    buf.resize(n);
    in.seekg(std::streamoff(offset));
    in.read(reinterpret_cast<char*>(buf.data()), std::streamsize(n));
    if (!in) buf.clear();
    in.clear();
    return buf;
  };
  // The end-of-central-directory record: 22 bytes plus a comment of up to 64 KiB, at the end.
  const size_t tail_size = size_t(std::min<uint64_t>(file_size, 22 + 65535));
  const auto tail = read_at(file_size - tail_size, tail_size);
  if (tail.size() < 22) return;
  size_t eocd = tail.size() - 22 + 1;
  while (eocd-- > 0)
    if (little_endian(&tail[eocd], 4) == 0x06054b50) break;
  if (eocd > tail.size()) return;
  uint64_t entries = little_endian(&tail[eocd + 10], 2), dir_size = little_endian(&tail[eocd + 12], 4),
           dir_offset = little_endian(&tail[eocd + 16], 4);
  if (eocd >= 20 && little_endian(&tail[eocd - 20], 4) == 0x07064b50) {  // zip64 locator
    const auto z64 = read_at(little_endian(&tail[eocd - 20 + 8], 8), 56);
    if (z64.size() < 56 || little_endian(z64.data(), 4) != 0x06064b50) return;
    entries = little_endian(&z64[32], 8);
    dir_size = little_endian(&z64[40], 8);
    dir_offset = little_endian(&z64[48], 8);
  }
  const auto dir = read_at(dir_offset, size_t(std::min<uint64_t>(dir_size, file_size)));
  size_t at = 0;
  for (uint64_t e = 0; e < entries && at + 46 <= dir.size(); ++e) {
    const unsigned char* h = &dir[at];
    if (little_endian(h, 4) != 0x02014b50) return;
    uint64_t uncompressed = little_endian(h + 24, 4);
    const uint64_t compressed = little_endian(h + 20, 4);
    const size_t name_size = little_endian(h + 28, 2), extra_size = little_endian(h + 30, 2),
                 comment_size = little_endian(h + 32, 2);
    if (at + 46 + name_size + extra_size > dir.size()) return;
    const std::string name(reinterpret_cast<const char*>(h + 46), name_size);
    if (uncompressed == 0xffffffff) {  // the real size is in the zip64 extra field (id 1)
      uncompressed = ~uint64_t(0);
      const unsigned char* extra = h + 46 + name_size;
      for (size_t x = 0; x + 4 <= extra_size;) {
        const size_t id = little_endian(extra + x, 2), n = little_endian(extra + x + 2, 2);
        if (id == 1 && n >= 8 && x + 4 + 8 <= extra_size) uncompressed = little_endian(extra + x + 4, 8);
        x += 4 + n;
      }
    }
    (void)compressed;
    if (uncompressed > file_size)
      fail(
          "{}: zip entry '{}' claims {} bytes uncompressed, more than the whole file's {} (torch.save stores "
          "entries uncompressed; the file is corrupt or crafted)",
          path, name, uncompressed, file_size);
    at += 46 + name_size + extra_size + comment_size;
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the weights file", path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

PyValuePtr read_zip(const std::string& path) {
  check_zip_entry_sizes(path);
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    fail("{}: not a readable torch.save zip archive ({})", path, e.what_without_backtrace());
  }
  if (!reader->hasRecord("data.pkl")) fail("{}: zip archive without data.pkl (not a torch.save file)", path);
  auto [pkl, pkl_size] = reader->getRecord("data.pkl");
  std::map<std::string, PyValuePtr> loaded;
  auto storages = [&](const PyValue& pid) -> PyValuePtr {
    StorageId id = parse_storage_id(pid, path);
    auto& slot = loaded[id.key];
    if (slot) return slot;
    const std::string record = "data/" + id.key;
    if (!reader->hasRecord(record)) fail("{}: storage record '{}' is missing", path, record);
    auto [ptr, nbytes] = reader->getRecord(record);
    size_t available = nbytes;
    check_storage_size(path, id, available);
    auto flat = torch::empty({id.numel}, id.dtype);
    const size_t want = size_t(id.numel) * flat.element_size();
    if (nbytes < want) fail("{}: storage '{}' holds {} bytes, expected {}", path, record, nbytes, want);
    if (want > 0) std::memcpy(flat.data_ptr(), ptr.get(), want);  // an empty tensor's data_ptr() is null
    slot = make(Kind::Storage);
    slot->tensor = flat;
    return slot;
  };
  Unpickler u(path, static_cast<const char*>(pkl.get()), pkl_size, storages);
  size_t pos = 0;
  return u.run(pos);
}

/// The legacy format: five pickles (magic, protocol, sys info, object, storage keys) followed by
/// each storage's element count (int64) and raw little-endian bytes, in the order of the keys.
PyValuePtr read_legacy(const std::string& path, const std::string& bytes) {
  std::map<std::string, PyValuePtr> storages;
  std::map<std::string, torch::Dtype> dtypes;
  size_t unclaimed = bytes.size();  // storages' bytes follow the pickles in this same file
  auto loader = [&](const PyValue& pid) -> PyValuePtr {
    if (pid.kind == Kind::Tuple && !pid.items.empty() && pid.items[0]->is_string() && pid.items[0]->s == "module")
      return make(Kind::None);  // pickled module source, only for whole-model saves
    StorageId id = parse_storage_id(pid, path);
    auto& slot = storages[id.key];
    if (!slot) {
      slot = make(Kind::Storage);
      check_storage_size(path, id, unclaimed);
      slot->tensor = torch::empty({id.numel}, id.dtype);
      dtypes[id.key] = id.dtype;
    }
    // A view (pre-1.0 files): (view_key, offset, size) into the root storage.
    if (pid.items.size() > 5 && pid.items[5]->kind == Kind::Tuple && pid.items[5]->items.size() == 3) {
      const auto& view = pid.items[5]->items;
      const int64_t start = view[1]->i, length = view[2]->i, numel = slot->tensor.numel();
      if (start < 0 || length < 0 || start > numel || length > numel - start)
        fail("{}: a storage view [{}, +{}) lies outside its storage of {} elements", path, start, length, numel);
      auto v = make(Kind::Storage);
      v->tensor = slot->tensor.narrow(0, view[1]->i, view[2]->i);
      return v;
    }
    return slot;
  };
  Unpickler u(path, bytes.data(), bytes.size(), loader);
  size_t pos = 0;
  auto magic = u.run(pos);
  static const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);  // 0x1950a86a20f9469cfc6c
  if (magic->kind != Kind::BigInt || magic->s != kMagic)
    fail("{}: not a torch.save file (no zip header and no legacy magic number)", path);
  auto protocol = u.run(pos);
  if (protocol->kind != Kind::Int || protocol->i != 1001)
    fail("{}: unsupported legacy torch.save protocol version {}", path, protocol->i);
  auto sys_info = u.run(pos);
  if (const auto* le = sys_info->get("little_endian"); le && le->kind == Kind::Bool && !le->b)
    fail("{}: big-endian torch.save files are not supported", path);
  auto root = u.run(pos);
  auto keys = u.run(pos);
  for (const auto& key : keys->items) {
    auto it = storages.find(key->s);
    if (it == storages.end()) fail("{}: storage '{}' listed but never used", path, key->s);
    auto& flat = it->second->tensor;
    if (bytes.size() - pos < 8) fail("{}: truncated storage data for '{}'", path, key->s);
    int64_t n = 0;
    std::memcpy(&n, bytes.data() + pos, 8);
    pos += 8;
    const size_t nbytes = size_t(flat.numel()) * flat.element_size();
    if (n != flat.numel() || bytes.size() - pos < nbytes)
      fail("{}: storage '{}' holds {} elements, expected {}", path, key->s, n, flat.numel());
    if (nbytes > 0) std::memcpy(flat.data_ptr(), bytes.data() + pos, nbytes);
    pos += nbytes;
  }
  return root;
}

bool all_tensors(const PyValue& dict) {
  if (dict.kind != Kind::Dict || dict.dict.empty()) return false;
  bool any = false;
  for (const auto& [k, v] : dict.dict) {
    if (!k->is_string()) return false;
    if (v->kind == Kind::Tensor)
      any = true;
    else if (v->kind == Kind::Dict && all_tensors(*v))
      any = true;
    else if (v->kind != Kind::None && v->kind != Kind::Int)
      return false;  // tolerate counters
  }
  return any;
}

void flatten(const PyValue& dict, const std::string& prefix, NamedTensors& out) {
  for (const auto& [k, v] : dict.dict) {
    if (v->kind == Kind::Tensor)
      out.emplace_back(prefix + k->s, v->tensor);
    else if (v->kind == Kind::Dict)
      flatten(*v, prefix + k->s + ".", out);
  }
}

}  // namespace

PyValuePtr read_torch_file(const std::string& path) {
  std::string head;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot open the weights file", path);
    head.resize(4);
    in.read(head.data(), 4);
    head.resize(size_t(in.gcount()));
  }
  try {
    if (head == std::string("PK\x03\x04", 4)) return read_zip(path);
    if (head.size() >= 2 && uint8_t(head[0]) == 0x80) return read_legacy(path, read_file(path));
  } catch (const c10::Error& e) {  // LibTorch's zip reader (a bad CRC, a truncated entry)
    fail("{}: cannot be read as a torch.save file ({})", path, e.what_without_backtrace());
  }
  fail(
      "{}: not a torch.save file (expected a zip archive or a legacy pickle; the pre-2018 tar "
      "format is not supported)",
      path);
}

NamedTensors find_state_dict(const PyValue& root, const std::string& path, std::string* where) {
  NamedTensors out;
  if (all_tensors(root)) {
    flatten(root, "", out);
    if (where) *where = "root";
    return out;
  }
  for (const char* key : {"state_dict", "model_state", "model", "net", "module", "params", "weights"}) {
    const PyValue* v = root.get(key);
    if (v && all_tensors(*v)) {
      flatten(*v, "", out);
      if (where) *where = fmt::format("key '{}'", key);
      return out;
    }
  }
  std::vector<std::string> keys;
  for (const auto& [k, v] : root.dict)
    if (k->is_string()) keys.push_back(k->s);
  fail(
      "{}: no state dict found (top-level keys: {}); expected a dict of tensors or one under "
      "state_dict/model_state/model/net",
      path, keys.empty() ? "none" : fmt::format("{}", fmt::join(keys, ", ")));
}

}  // namespace cseg::weights
