// EgressPolicy: where an outbound request that a user can aim may go.
//
// A user's LLM provider URL (and watsonx IAM URL) is a request the server makes on the user's
// behalf, from inside the network it runs in. Left open, it reaches what no user should: the
// loopback services (Redis, PostgreSQL, Milvus), private ranges, the cloud metadata service at
// 169.254.169.254. Check() resolves the URL's host, refuses addresses in loopback, link-local,
// private, shared, multicast, documentation and other reserved ranges (IPv4 and IPv6, IPv4-mapped
// and NAT64 forms included) unless an administrator's allow-list (MODULO_EGRESS_ALLOW: CIDRs and
// host names) names them, and returns the one address that passed, which the caller must connect
// to (curl's CURLOPT_RESOLVE), so that a second DNS answer cannot swap in another address between
// the check and the connection. Redirects are never followed by the callers.
//
// URLs from the server's own configuration (MODULO_LLM_URL, remote embedders, MODULO_JWKS) are
// the administrator's and are not checked.
//
// Thread-safety: immutable after construction; Check() may run on any number of threads.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::net {

// An IPv6 address (IPv4 as ::ffff:a.b.c.d) with a prefix length over the 128 bits.
struct IpRange {
  std::array<std::uint8_t, 16> address{};
  int prefix_bits = 128;
  [[nodiscard]] bool Contains(const std::array<std::uint8_t, 16>& a) const noexcept;
};

// "10.0.0.0/8", "fd00::/8", "192.168.1.7" (a single address): the range, or InvalidArgument.
[[nodiscard]] Result<IpRange> ParseIpRange(std::string_view text);

// An address in 16-byte form (IPv4 mapped), from its text; InvalidArgument if it is not one.
[[nodiscard]] Result<std::array<std::uint8_t, 16>> ParseIp(std::string_view text);

// True for an address no user-aimed request may reach by default (see above).
[[nodiscard]] bool IsInternalAddress(const std::array<std::uint8_t, 16>& a) noexcept;

struct EgressTarget {
  std::string host;     // as in the URL, brackets removed from an IPv6 literal
  int port = 0;
  std::string address;  // the checked address, text form
  // "host:port:address" for CURLOPT_RESOLVE (IPv6 addresses in brackets).
  [[nodiscard]] std::string CurlResolve() const;
};

class EgressPolicy {
 public:
  // Internal addresses refused; `allow_list` is MODULO_EGRESS_ALLOW (comma- or space-separated
  // CIDRs, addresses and host names); `allow_loopback` opens 127.0.0.0/8 and ::1 (the one local
  // user of --auth none owns the machine and its local model servers).
  [[nodiscard]] static Result<EgressPolicy> Make(std::string_view allow_list, bool allow_loopback);

  // Resolves the host of an http:// or https:// `url` and returns the address to connect to:
  // PermissionDenied naming the host and address when it is internal and not allowed,
  // InvalidArgument for a URL that is not http(s) or has no host, Unavailable when the host does
  // not resolve.
  [[nodiscard]] Result<EgressTarget> Check(std::string_view url) const;

  // Whether an address may be reached under this policy.
  [[nodiscard]] bool Allows(const std::array<std::uint8_t, 16>& address) const noexcept;

 private:
  std::vector<IpRange> allowed_ranges_;
  std::vector<std::string> allowed_hosts_;  // lower case
};

}  // namespace modulo::net
