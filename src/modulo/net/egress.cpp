#include "modulo/net/egress.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>

namespace modulo::net {
namespace {

using Address = std::array<std::uint8_t, 16>;

Address MapV4(const std::uint8_t v4[4]) {
  Address a{};
  a[10] = 0xff;
  a[11] = 0xff;
  std::memcpy(a.data() + 12, v4, 4);
  return a;
}

bool IsMappedV4(const Address& a) {
  static constexpr std::uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), kPrefix, 12) == 0;
}

std::string AddressText(const Address& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (IsMappedV4(a)) {
    inet_ntop(AF_INET, a.data() + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
  }
  return buf;
}

// The ranges no user-aimed request reaches by default (IANA's special-purpose registries).
const std::vector<IpRange>& InternalRanges() {
  static const std::vector<IpRange> ranges = [] {
    std::vector<IpRange> out;
    for (const char* r : {
             // IPv4 (matched in their ::ffff: form)
             "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
             "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
             "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
             // IPv6
             "::/128", "::1/128", "::/96",  // unspecified, loopback, IPv4-compatible
             "64:ff9b::/96", "64:ff9b:1::/48",  // NAT64: the IPv4 address inside may be internal
             "100::/64", "2001::/23", "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10",
             "ff00::/8"}) {
      out.push_back(*ParseIpRange(r));
    }
    return out;
  }();
  return ranges;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

struct UrlParts {
  std::string scheme, host;
  int port = 0;
};

Result<UrlParts> SplitUrl(std::string_view url) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
  if (!u) return Fail(Error::Internal("cannot allocate a URL parser"));
  const std::string text(url);
  if (curl_url_set(u.get(), CURLUPART_URL, text.c_str(), 0) != CURLUE_OK) {
    return Fail(Error::InvalidArgument("'" + text + "' is not a valid URL"));
  }
  auto part = [&](CURLUPart which, unsigned flags) -> std::string {
    char* value = nullptr;
    if (curl_url_get(u.get(), which, &value, flags) != CURLUE_OK || value == nullptr) return {};
    std::string out(value);
    curl_free(value);
    return out;
  };
  UrlParts p;
  p.scheme = Lower(part(CURLUPART_SCHEME, 0));
  if (p.scheme != "http" && p.scheme != "https") {
    return Fail(Error::InvalidArgument("'" + text + "' is not an http:// or https:// URL"));
  }
  p.host = part(CURLUPART_HOST, 0);
  if (p.host.size() >= 2 && p.host.front() == '[' && p.host.back() == ']') p.host = p.host.substr(1, p.host.size() - 2);
  if (const auto zone = p.host.find('%'); zone != std::string::npos) p.host.resize(zone);  // fe80::1%eth0
  if (p.host.empty()) return Fail(Error::InvalidArgument("'" + text + "' has no host"));
  const std::string port = part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  p.port = port.empty() ? 0 : std::atoi(port.c_str());
  if (p.port <= 0 || p.port > 65535) return Fail(Error::InvalidArgument("'" + text + "' has no valid port"));
  return p;
}

}  // namespace

bool IpRange::Contains(const Address& a) const noexcept {
  int bits = prefix_bits;
  for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
    if ((a[i] & mask) != (address[i] & mask)) return false;
  }
  return true;
}

Result<Address> ParseIp(std::string_view text) {
  const std::string s(text);
  std::uint8_t v4[4];
  if (inet_pton(AF_INET, s.c_str(), v4) == 1) return MapV4(v4);
  Address a{};
  if (inet_pton(AF_INET6, s.c_str(), a.data()) == 1) return a;
  return Fail(Error::InvalidArgument("'" + s + "' is not an IP address"));
}

Result<IpRange> ParseIpRange(std::string_view text) {
  const auto slash = text.find('/');
  auto address = ParseIp(text.substr(0, slash));
  if (!address) return Fail(address.error());
  const bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
  IpRange r;
  r.address = *address;
  r.prefix_bits = 128;
  if (slash != std::string_view::npos) {
    const std::string bits(text.substr(slash + 1));
    char* end = nullptr;
    const long n = std::strtol(bits.c_str(), &end, 10);
    if (bits.empty() || *end != '\0' || n < 0 || n > (v4 ? 32 : 128)) {
      return Fail(Error::InvalidArgument("'" + std::string(text) + "' has an invalid prefix length"));
    }
    r.prefix_bits = static_cast<int>(v4 ? n + 96 : n);
  }
  return r;
}

bool IsInternalAddress(const Address& a) noexcept {
  for (const auto& r : InternalRanges()) {
    if (r.Contains(a)) return true;
  }
  return false;
}

std::string EgressTarget::CurlResolve() const {
  const bool v6 = address.find(':') != std::string::npos;
  return host + ":" + std::to_string(port) + ":" + (v6 ? "[" + address + "]" : address);
}

Result<EgressPolicy> EgressPolicy::Make(std::string_view allow_list, bool allow_loopback) {
  EgressPolicy p;
  if (allow_loopback) {
    p.allowed_ranges_.push_back(*ParseIpRange("127.0.0.0/8"));
    p.allowed_ranges_.push_back(*ParseIpRange("::1/128"));
  }
  std::string item;
  auto flush = [&]() -> Status {
    if (item.empty()) return {};
    const bool looks_ip = item.find('/') != std::string::npos || item.find(':') != std::string::npos ||
                          std::all_of(item.begin(), item.end(), [](unsigned char c) { return std::isdigit(c) || c == '.'; });
    if (looks_ip) {
      auto r = ParseIpRange(item);
      if (!r) return Fail(std::move(r.error()).Wrap("MODULO_EGRESS_ALLOW"));
      p.allowed_ranges_.push_back(*r);
    } else {
      for (unsigned char c : item) {
        if (!std::isalnum(c) && c != '-' && c != '.' && c != '_') {
          return Fail(Error::InvalidArgument("MODULO_EGRESS_ALLOW: '" + item + "' is neither a CIDR nor a host name"));
        }
      }
      p.allowed_hosts_.push_back(Lower(item));
    }
    item.clear();
    return {};
  };
  for (char c : allow_list) {
    if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
      if (auto st = flush(); !st) return Fail(st.error());
    } else {
      item += c;
    }
  }
  if (auto st = flush(); !st) return Fail(st.error());
  return p;
}

bool EgressPolicy::Allows(const Address& address) const noexcept {
  for (const auto& r : allowed_ranges_) {
    if (r.Contains(address)) return true;
  }
  return !IsInternalAddress(address);
}

Result<EgressTarget> EgressPolicy::Check(std::string_view url) const {
  auto parts = SplitUrl(url);
  if (!parts) return Fail(parts.error());
  const std::string host = Lower(parts->host);
  const bool named = std::find(allowed_hosts_.begin(), allowed_hosts_.end(), host) != allowed_hosts_.end();

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(parts->host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return Fail(Error::Unavailable("the host '" + parts->host + "' does not resolve (" + gai_strerror(rc) + ")"));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, &freeaddrinfo);
  std::string refused;
  for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    Address a{};
    if (ai->ai_family == AF_INET) {
      a = MapV4(reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr));
    } else if (ai->ai_family == AF_INET6) {
      std::memcpy(a.data(), &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    if (named || Allows(a)) {
      EgressTarget t;
      t.host = parts->host;
      t.port = parts->port;
      t.address = AddressText(a);
      return t;
    }
    if (refused.empty()) refused = AddressText(a);
  }
  return Fail(Error::PermissionDenied(
      "the host '" + parts->host + "' resolves to " + (refused.empty() ? std::string("no usable address") : refused) +
      ", an internal address that user-configured endpoints may not reach (an administrator can allow it with "
      "MODULO_EGRESS_ALLOW)"));
}

}  // namespace modulo::net
