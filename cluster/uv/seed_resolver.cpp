#include "cluster/uv/seed_resolver.h"

#include <netdb.h>
#include <netinet/in.h>

#include <cstring>

namespace shoal::cluster {

std::string SeedSpec::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::expected<SeedSpec, std::string> parse_seed(std::string_view text) {
  auto parts = split_host_port(text);
  if (!parts) return std::unexpected(parts.error());
  if (parts->second == 0)
    return std::unexpected("a seed needs a port, got '" + std::string(text) + "'");
  return SeedSpec{std::string(parts->first), parts->second};
}

struct UvSeedResolver::Batch {
  struct Lookup {
    uv_getaddrinfo_t req{};
    std::weak_ptr<Batch> batch;
    std::size_t index = 0;
  };
  Done done;
  std::size_t pending = 0;
  bool cancelled = false;
  std::vector<Address> found;
  std::vector<std::string> errors;
  std::vector<SeedSpec> specs;
  std::vector<Lookup*> lookups;
};

UvSeedResolver::UvSeedResolver(uv_loop_t* loop, std::vector<SeedSpec> specs)
    : loop_(loop), specs_(std::move(specs)) {}

UvSeedResolver::~UvSeedResolver() {
  close();
}

bool UvSeedResolver::busy() const {
  return current_ && current_->pending > 0;
}

void UvSeedResolver::close() {
  if (!current_) return;
  current_->cancelled = true;
  for (Batch::Lookup* l : current_->lookups) {
    if (l != nullptr) uv_cancel(reinterpret_cast<uv_req_t*>(&l->req));
  }
  current_.reset();
}

void UvSeedResolver::resolve(Done done) {
  if (busy()) return;
  auto batch = std::make_shared<Batch>();
  batch->done = std::move(done);
  batch->specs = specs_;
  current_ = batch;
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    if (auto literal = Address::parse(specs_[i].to_string())) {
      batch->found.push_back(*literal);
      continue;
    }
    auto* lookup = new Batch::Lookup();
    lookup->batch = batch;
    lookup->index = i;
    lookup->req.data = lookup;
    batch->lookups.push_back(lookup);
    ++batch->pending;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    const int rc = uv_getaddrinfo(
        loop_, &lookup->req,
        [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
          auto* l = static_cast<Batch::Lookup*>(req->data);
          auto owner = l->batch.lock();
          if (owner) {
            for (Batch::Lookup*& slot : owner->lookups) {
              if (slot == l) slot = nullptr;
            }
          }
          if (owner && !owner->cancelled) {
            const SeedSpec& spec = owner->specs[l->index];
            if (status != 0) {
              owner->errors.push_back(spec.to_string() + ": " + uv_strerror(status));
            }
            for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
              Address a;
              if (ai->ai_family == AF_INET) {
                std::memcpy(a.ip.data(), &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, 4);
                a.ip_len = 4;
              } else if (ai->ai_family == AF_INET6) {
                std::memcpy(a.ip.data(), &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr,
                            16);
                a.ip_len = 16;
              } else {
                continue;
              }
              a.port = spec.port;
              owner->found.push_back(a);
            }
            if (--owner->pending == 0 && owner->done) {
              auto cb = std::move(owner->done);
              cb(std::move(owner->found), std::move(owner->errors));
            }
          }
          uv_freeaddrinfo(res);
          delete l;
        },
        specs_[i].host.c_str(), nullptr, &hints);
    if (rc != 0) {
      batch->lookups.back() = nullptr;
      delete lookup;
      --batch->pending;
      batch->errors.push_back(specs_[i].to_string() + ": " + uv_strerror(rc));
    }
  }
  if (batch->pending == 0 && batch->done) {
    auto cb = std::move(batch->done);
    cb(std::move(batch->found), std::move(batch->errors));
  }
}

}  // namespace shoal::cluster
