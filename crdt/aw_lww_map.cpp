#include "crdt/aw_lww_map.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace shoal::crdt {

// --- EntryBlock ---

namespace detail {

namespace {

constexpr std::size_t padded(std::size_t n) {
  return (n + 7) & ~std::size_t{7};
}

}  // namespace

EntryBlock* EntryBlock::create(std::string_view key, std::span<const RawVersion> versions,
                               BlockPool* pool) {
  std::size_t value_bytes = 0;
  for (const RawVersion& v : versions)
    value_bytes += v.value.size();
  const std::size_t size =
      sizeof(EntryBlock) + padded(key.size()) + versions.size() * sizeof(VersionHead) + value_bytes;
  void* memory = pool != nullptr ? pool->allocate(size) : ::operator new(size);
  auto* block = new (memory) EntryBlock();  // constructs the (unlinked) tree hook too
  block->key_len_ = static_cast<std::uint32_t>(key.size());
  block->count_ = static_cast<std::uint32_t>(versions.size());
  char* out = reinterpret_cast<char*>(block + 1);
  if (!key.empty()) std::memcpy(out, key.data(), key.size());
  auto* heads = reinterpret_cast<VersionHead*>(out + padded(key.size()));
  for (std::size_t i = 0; i < versions.size(); ++i) {
    const RawVersion& v = versions[i];
    new (heads + i)
        VersionHead{v.ts, v.counter, v.replica, static_cast<std::uint32_t>(v.value.size())};
  }
  out = reinterpret_cast<char*>(heads + versions.size());
  for (const RawVersion& v : versions) {
    if (!v.value.empty()) std::memcpy(out, v.value.data(), v.value.size());
    out += v.value.size();
  }
  return block;
}

std::size_t EntryBlock::bytes() const {
  std::size_t value_bytes = 0;
  const VersionHead* h = heads();
  for (std::uint32_t i = 0; i < count_; ++i)
    value_bytes += h[i].value_len;
  return sizeof(EntryBlock) + padded(key_len_) + count_ * sizeof(VersionHead) + value_bytes;
}

void EntryBlock::destroy(EntryBlock* block, BlockPool* pool) noexcept {
  if (block == nullptr) return;
  const std::size_t size = block->bytes();
  block->~EntryBlock();
  if (pool != nullptr) {
    pool->deallocate(block, size);
  } else {
    ::operator delete(static_cast<void*>(block));
  }
}

const VersionHead* EntryBlock::heads() const {
  return reinterpret_cast<const VersionHead*>(key_data() + padded(key_len_));
}

RawVersion EntryBlock::version(std::uint32_t i) const {
  const VersionHead* h = heads();
  const char* value = reinterpret_cast<const char*>(h + count_);
  for (std::uint32_t j = 0; j < i; ++j)
    value += h[j].value_len;
  return RawVersion{h[i].ts, h[i].counter, h[i].replica, std::string_view(value, h[i].value_len)};
}

}  // namespace detail

namespace {

bool holds_dot(const detail::EntryBlock* block, ReplicaIx replica, Counter counter) {
  if (block == nullptr) return false;
  for (std::uint32_t i = 0; i < block->count(); ++i) {
    const RawVersion v = block->version(i);
    if (v.replica == replica && v.counter == counter) return true;
  }
  return false;
}

}  // namespace

// --- AwLwwMap ---

AwLwwMap::AwLwwMap(const AwLwwMap& other)
    : kind_(other.kind_), context_(other.context_), valued_keys_(other.valued_keys_) {
  std::vector<RawVersion> versions;
  for (const detail::EntryBlock& block : other.entries_) {
    versions.clear();
    for (std::uint32_t i = 0; i < block.count(); ++i)
      versions.push_back(block.version(i));
    detail::EntryBlock* copy = detail::EntryBlock::create(block.key(), versions, pool());
    entries_.insert_before(entries_.end(), *copy);
    if (indexed()) hash_.insert(copy);
  }
}

AwLwwMap::AwLwwMap(AwLwwMap&& other) noexcept
    : kind_(other.kind_),
      pool_(std::move(other.pool_)),
      entries_(std::move(other.entries_)),
      hash_(std::move(other.hash_)),
      context_(std::move(other.context_)),
      valued_keys_(other.valued_keys_) {
  other.valued_keys_ = 0;
}

AwLwwMap& AwLwwMap::operator=(AwLwwMap&& other) noexcept {
  if (this != &other) {
    entries_.clear_and_dispose(destroy());
    kind_ = other.kind_;
    pool_ = std::move(other.pool_);
    entries_ = std::move(other.entries_);
    hash_ = std::move(other.hash_);
    context_ = std::move(other.context_);
    valued_keys_ = other.valued_keys_;
    other.valued_keys_ = 0;
  }
  return *this;
}

AwLwwMap::~AwLwwMap() {
  entries_.clear_and_dispose(destroy());
}

AwLwwMap& AwLwwMap::operator=(const AwLwwMap& other) {
  if (this != &other) {
    AwLwwMap copy(other);
    *this = std::move(copy);
  }
  return *this;
}

bool AwLwwMap::precedes(const RawVersion& a, const RawVersion& b) const {
  if (a.ts != b.ts) return a.ts > b.ts;
  if (a.replica != b.replica) return context_.id(a.replica) > context_.id(b.replica);
  return a.counter > b.counter;
}

void AwLwwMap::sort_versions(std::vector<RawVersion>& versions) const {
  if (versions.size() < 2) return;
  std::sort(versions.begin(), versions.end(),
            [this](const RawVersion& a, const RawVersion& b) { return precedes(a, b); });
}

VersionView AwLwwMap::view(const RawVersion& v) const {
  return VersionView{v.value, v.ts, context_.id(v.replica), v.counter};
}

AwLwwMap::Index::iterator AwLwwMap::find(std::string_view key) {
  if (!indexed()) return entries_.find(key, detail::KeyLess{});
  detail::EntryBlock* block = hash_.find(key);
  return block == nullptr ? entries_.end() : entries_.iterator_to(*block);
}

AwLwwMap::Index::const_iterator AwLwwMap::find(std::string_view key) const {
  if (!indexed()) return entries_.find(key, detail::KeyLess{});
  const detail::EntryBlock* block = hash_.find(key);
  return block == nullptr ? entries_.end() : entries_.iterator_to(*block);
}

std::optional<VersionView> AwLwwMap::get(std::string_view key) const {
  auto it = find(key);
  if (it == entries_.end() || it->count() == 0) return std::nullopt;
  return view(it->version(0));
}

std::size_t AwLwwMap::versions(std::string_view key,
                               const std::function<void(const VersionView&)>& fn) const {
  auto it = find(key);
  if (it == entries_.end()) return 0;
  const std::uint32_t n = it->count();
  if (fn) {
    for (std::uint32_t i = 0; i < n; ++i)
      fn(view(it->version(i)));
  }
  return n;
}

std::size_t AwLwwMap::scan(
    std::string_view prefix,
    const std::function<bool(std::string_view, const VersionView&)>& fn) const {
  std::size_t visited = 0;
  for (auto it = entries_.lower_bound(prefix, detail::KeyLess{}); it != entries_.end(); ++it) {
    const std::string_view key = it->key();
    if (!key.starts_with(prefix)) break;
    if (it->count() == 0) continue;
    ++visited;
    if (!fn(key, view(it->version(0)))) break;
  }
  return visited;
}

Timestamp AwLwwMap::max_timestamp() const {
  Timestamp best = 0;
  for (const detail::EntryBlock& block : entries_) {
    for (std::uint32_t i = 0; i < block.count(); ++i) {
      best = std::max(best, block.version(i).ts);
    }
  }
  return best;
}

void AwLwwMap::for_each_entry(
    const std::function<void(std::string_view, std::span<const RawVersion>)>& fn) const {
  std::vector<RawVersion> versions;
  for (const detail::EntryBlock& block : entries_) {
    versions.clear();
    for (std::uint32_t i = 0; i < block.count(); ++i)
      versions.push_back(block.version(i));
    fn(block.key(), versions);
  }
}

AwLwwMap::Index::iterator AwLwwMap::replace(Index::iterator it,
                                            std::span<const RawVersion> versions,
                                            const ChangeFn& on_change) {
  detail::EntryBlock* old = &*it;
  const bool had_value = old->count() > 0;
  std::optional<VersionView> before;
  if (had_value) before = view(old->version(0));
  if (versions.empty() && kind_ == Kind::state) {
    if (on_change) on_change(Change{old->key(), before, std::nullopt, 0});
    if (had_value) --valued_keys_;
    if (indexed()) hash_.erase(old);
    return entries_.erase_and_dispose(it, destroy());
  }
  // Same key, so the new block takes the old one's place in the order. The old block is unlinked
  // now and freed after the change is reported (`before` points into it).
  detail::EntryBlock* fresh = detail::EntryBlock::create(old->key(), versions, pool());
  const auto next = std::next(it);
  entries_.insert_before(it, *fresh);
  entries_.erase(it);
  if (indexed()) {
    hash_.erase(old);
    hash_.insert(fresh);
  }
  valued_keys_ += static_cast<std::size_t>(!versions.empty()) - static_cast<std::size_t>(had_value);
  if (on_change) {
    std::optional<VersionView> after;
    if (!versions.empty()) after = view(fresh->version(0));
    on_change(Change{fresh->key(), before, after, versions.size()});
  }
  detail::EntryBlock::destroy(old, pool_.get());
  return next;
}

void AwLwwMap::insert(Index::iterator hint, std::string_view key,
                      std::span<const RawVersion> versions, const ChangeFn& on_change,
                      std::uint64_t hash) {
  auto it = entries_.insert_before(hint, *detail::EntryBlock::create(key, versions, pool()));
  if (indexed()) {
    if (hash == 0) hash = detail::KeyIndex::hash(key);
    hash_.insert(&*it, hash);
  }
  if (versions.empty()) return;
  ++valued_keys_;
  if (on_change) {
    on_change(Change{it->key(), std::nullopt, view(it->version(0)), versions.size()});
  }
}

void AwLwwMap::record(AwLwwMap& delta, std::string_view key, std::span<const RawVersion> removed,
                      const RawVersion* added) const {
  CausalContext& dctx = delta.context_;
  for (const RawVersion& v : removed)
    dctx.add(Dot{dctx.intern(context_.id(v.replica)), v.counter});
  RawVersion fresh{};
  if (added != nullptr) {
    fresh = *added;
    fresh.replica = dctx.intern(context_.id(added->replica));
    dctx.add(Dot{fresh.replica, fresh.counter});
  }
  const std::span<const RawVersion> one(&fresh, added != nullptr ? 1 : 0);
  auto it = delta.entries_.lower_bound(key, detail::KeyLess{});
  if (it == delta.entries_.end() || it->key() != key) {
    delta.insert(it, key, one, {});
    return;
  }
  // The batch already lists the key: keep those of its versions this mutation did not remove.
  std::vector<RawVersion> kept;
  const detail::EntryBlock* block = &*it;
  for (std::uint32_t i = 0; i < block->count(); ++i) {
    const RawVersion v = block->version(i);
    const bool gone = std::any_of(removed.begin(), removed.end(), [&](const RawVersion& r) {
      return r.counter == v.counter && context_.id(r.replica) == dctx.id(v.replica);
    });
    if (!gone) kept.push_back(v);
  }
  if (added != nullptr) kept.push_back(fresh);
  delta.sort_versions(kept);
  delta.replace(it, kept, {});
}

void AwLwwMap::put(std::string_view self, Timestamp ts, std::string_view key,
                   std::string_view value, AwLwwMap& delta, const ChangeFn& on_change) {
  const ReplicaIx me = context_.intern(self);
  const RawVersion fresh{ts, context_.next_counter(me), me, value};
  context_.add(Dot{me, fresh.counter});
  // The tree walk finds the key or where a new one goes; meanwhile the hash slot loads.
  const std::uint64_t h = indexed() ? hash_.prefetch(key) : 0;
  auto it = entries_.lower_bound(key, detail::KeyLess{});
  if (it == entries_.end() || it->key() != key) {
    record(delta, key, {}, &fresh);
    insert(it, key, std::span(&fresh, 1), on_change, h);
    return;
  }
  scratch_.clear();
  const detail::EntryBlock* old = &*it;
  for (std::uint32_t i = 0; i < old->count(); ++i)
    scratch_.push_back(old->version(i));
  record(delta, key, scratch_, &fresh);
  replace(it, std::span(&fresh, 1), on_change);
}

bool AwLwwMap::remove(std::string_view key, AwLwwMap& delta, const ChangeFn& on_change) {
  auto it = find(key);
  if (it == entries_.end()) return false;
  scratch_.clear();
  const detail::EntryBlock* old = &*it;
  for (std::uint32_t i = 0; i < old->count(); ++i)
    scratch_.push_back(old->version(i));
  record(delta, key, scratch_, nullptr);
  replace(it, {}, on_change);
  return true;
}

bool AwLwwMap::remove_if(std::string_view key, const VersionPredicate& pred, AwLwwMap& delta,
                         const ChangeFn& on_change) {
  auto it = find(key);
  if (it == entries_.end()) return false;
  const detail::EntryBlock* block = &*it;
  scratch_.clear();
  std::vector<RawVersion> removed;
  for (std::uint32_t i = 0; i < block->count(); ++i) {
    const RawVersion v = block->version(i);
    (pred(key, view(v)) ? removed : scratch_).push_back(v);
  }
  if (removed.empty()) return false;
  record(delta, key, removed, nullptr);
  replace(it, scratch_, on_change);
  return true;
}

std::size_t AwLwwMap::remove_where(const VersionPredicate& pred, AwLwwMap& delta,
                                   const ChangeFn& on_change) {
  std::size_t touched = 0;
  std::vector<RawVersion> removed;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const detail::EntryBlock* block = &*it;
    scratch_.clear();
    removed.clear();
    for (std::uint32_t i = 0; i < block->count(); ++i) {
      const RawVersion v = block->version(i);
      (pred(block->key(), view(v)) ? removed : scratch_).push_back(v);
    }
    if (removed.empty()) {
      ++it;
      continue;
    }
    ++touched;
    record(delta, block->key(), removed, nullptr);
    it = replace(it, scratch_, on_change);
  }
  return touched;
}

AwLwwMap AwLwwMap::put(std::string_view self, Timestamp ts, std::string_view key,
                       std::string_view value, const ChangeFn& on_change) {
  AwLwwMap delta(Kind::delta);
  put(self, ts, key, value, delta, on_change);
  return delta;
}

AwLwwMap AwLwwMap::remove(std::string_view key, const ChangeFn& on_change) {
  AwLwwMap delta(Kind::delta);
  remove(key, delta, on_change);
  return delta;
}

AwLwwMap AwLwwMap::remove_where(const VersionPredicate& pred, const ChangeFn& on_change) {
  AwLwwMap delta(Kind::delta);
  remove_where(pred, delta, on_change);
  return delta;
}

bool AwLwwMap::merge_key(Index::iterator mine, const detail::EntryBlock* theirs,
                         std::string_view key, const AwLwwMap& other, const ChangeFn& on_change) {
  std::vector<RawVersion>& scratch = scratch_;
  const bool have = mine != entries_.end() && mine->key() == key;
  const detail::EntryBlock* block = have ? &*mine : nullptr;
  scratch.clear();
  bool dropped = false;
  // Keep my versions unless the other side has seen their dot and no longer holds it.
  if (block != nullptr) {
    for (std::uint32_t i = 0; i < block->count(); ++i) {
      const RawVersion v = block->version(i);
      const auto their_ix = other.context_.find(context_.id(v.replica));
      const bool seen = their_ix && other.context_.contains(Dot{*their_ix, v.counter});
      if (!seen || holds_dot(theirs, *their_ix, v.counter)) {
        scratch.push_back(v);
      } else {
        dropped = true;
      }
    }
  }
  // Add their versions whose dot I have not seen (a seen dot I do not hold was removed here).
  bool added = false;
  if (theirs != nullptr) {
    for (std::uint32_t j = 0; j < theirs->count(); ++j) {
      RawVersion v = theirs->version(j);
      v.replica = to_mine_[v.replica];
      if (!context_.contains(Dot{v.replica, v.counter})) {
        scratch.push_back(v);
        added = true;
      }
    }
  }
  if (!dropped && !added) {
    // A delta lists every key whose dots its context covers (invariant 4), even without versions.
    if (block == nullptr && theirs != nullptr && is_delta()) {
      insert(mine, key, scratch, on_change);
      return true;
    }
    return false;
  }
  sort_versions(scratch);
  if (have) {
    replace(mine, scratch, on_change);
  } else {
    insert(mine, key, scratch, on_change);
  }
  return true;
}

bool AwLwwMap::join(const AwLwwMap& other, const ChangeFn& on_change) {
  if (&other == this) return false;
  context_.translate(other.context_, to_mine_);
  bool changed = false;
  if (other.is_complete()) {
    // Every key of both sides: mine that are absent there may have been removed there.
    auto mine = entries_.begin();
    auto theirs = other.entries_.begin();
    while (mine != entries_.end() || theirs != other.entries_.end()) {
      if (theirs == other.entries_.end() ||
          (mine != entries_.end() && mine->key() < theirs->key())) {
        auto next = std::next(mine);
        changed |= merge_key(mine, nullptr, mine->key(), other, on_change);
        mine = next;
      } else {
        const bool same = mine != entries_.end() && mine->key() == theirs->key();
        auto next = same ? std::next(mine) : mine;
        changed |= merge_key(mine, &*theirs, theirs->key(), other, on_change);
        mine = next;
        ++theirs;
      }
    }
    if (kind_ == Kind::delta) kind_ = Kind::complete_delta;
  } else {
    for (const detail::EntryBlock& theirs : other.entries_) {
      auto mine = entries_.lower_bound(theirs.key(), detail::KeyLess{});
      changed |= merge_key(mine, &theirs, theirs.key(), other, on_change);
    }
  }
  changed |= context_.join(other.context_);
  return changed;
}

bool AwLwwMap::append(std::string_view key, std::vector<RawVersion>& versions) {
  if (!entries_.empty() && !(entries_.rbegin()->key() < key)) return false;
  if (versions.empty() && kind_ == Kind::state) return false;
  for (std::size_t i = 0; i < versions.size(); ++i) {
    for (std::size_t j = i + 1; j < versions.size(); ++j) {
      if (versions[i].replica == versions[j].replica &&
          versions[i].counter == versions[j].counter) {
        return false;
      }
    }
  }
  sort_versions(versions);
  for (const RawVersion& v : versions)
    context_.add(Dot{v.replica, v.counter});
  detail::EntryBlock* block = detail::EntryBlock::create(key, versions, pool());
  entries_.insert_before(entries_.end(), *block);
  if (indexed()) hash_.insert(block);
  if (!versions.empty()) ++valued_keys_;
  return true;
}

bool operator==(const AwLwwMap& a, const AwLwwMap& b) {
  if (a.kind_ != b.kind_ || a.entries_.size() != b.entries_.size()) return false;
  if (!(a.context_ == b.context_)) return false;
  auto ia = a.entries_.begin();
  auto ib = b.entries_.begin();
  for (; ia != a.entries_.end(); ++ia, ++ib) {
    const detail::EntryBlock* x = &*ia;
    const detail::EntryBlock* y = &*ib;
    if (x->key() != y->key() || x->count() != y->count()) return false;
    for (std::uint32_t i = 0; i < x->count(); ++i) {
      const RawVersion u = x->version(i);
      const RawVersion v = y->version(i);
      if (u.ts != v.ts || u.counter != v.counter || u.value != v.value ||
          a.context_.id(u.replica) != b.context_.id(v.replica)) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace shoal::crdt
