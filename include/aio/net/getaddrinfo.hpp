#pragma once
// aio::getaddrinfo: name resolution off the loop (asyncio's loop.getaddrinfo, which
// runs socket.getaddrinfo in the default executor).
//
//   for (const aio::address_info& a : co_await aio::getaddrinfo("localhost", 8080))
//       ... a.address.to_string() ...
//
// A numeric host ("127.0.0.1", "::1") with a socket type asked for is answered at
// once, without a lookup and without a thread, as asyncio's _ipaddr_info does; every
// other host is looked up by the C library's getaddrinfo on a worker of the running
// loop's default executor, so a slow DNS server blocks no task.
//
// Cancellation: the await ends at once with aio::cancelled_error; a lookup already
// running finishes on its worker and its answer is dropped. Errors: aio::gai_error
// (EAI_* in code(), the C library's message in what()), aio::os_error for EAI_SYSTEM.

#include <netdb.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "../event_loop.hpp"
#include "../os_error.hpp"
#include "../task.hpp"
#include "socket_address.hpp"

namespace aio {

// The EAI_* codes of getaddrinfo (Python's socket.gaierror).
inline const std::error_category& gai_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "getaddrinfo"; }
        std::string message(int code) const override { return ::gai_strerror(code); }
    };
    static const category instance;
    return instance;
}

class gai_error : public os_error {
public:
    gai_error(int code, const std::string& what) : os_error(0, what), code_(code, gai_category()) {
        message_ = what + ": " + code_.message();
    }
    // EAI_NONAME, EAI_AGAIN, ...
    int gai_code() const noexcept { return code_.value(); }
    const std::error_code& gai_error_code() const noexcept { return code_; }
    const char* what() const noexcept override { return message_.c_str(); }

private:
    std::error_code code_;
    std::string message_;
};

struct address_hints {
    int family = AF_UNSPEC;  // AF_INET, AF_INET6, AF_UNSPEC for both
    int type = 0;            // SOCK_STREAM, SOCK_DGRAM, 0 for any
    int protocol = 0;
    int flags = 0;  // AI_PASSIVE, AI_CANONNAME, AI_NUMERICHOST, ...
};

struct address_info {
    int family = AF_UNSPEC;
    int type = 0;
    int protocol = 0;
    std::string canonical_name;  // with AI_CANONNAME, on the first entry
    socket_address address;
};

namespace detail {

// asyncio's _ipaddr_info: a numeric host needs no lookup.
inline bool numeric_answer(const std::string& host, std::uint16_t port, const address_hints& hints,
                           std::vector<address_info>& out) {
    if (hints.type != SOCK_STREAM && hints.type != SOCK_DGRAM) return false;
    socket_address address;
    if (!socket_address::try_ip(host, port, address)) return false;
    if (hints.family != AF_UNSPEC && hints.family != address.family()) return false;  // the lookup says why
    const int protocol = hints.protocol ? hints.protocol : hints.type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
    out.push_back({address.family(), hints.type, protocol, {}, address});
    return true;
}

inline std::vector<address_info> lookup(const std::string& host, const std::string& service, const address_hints& hints) {
    addrinfo want{};
    want.ai_family = hints.family;
    want.ai_socktype = hints.type;
    want.ai_protocol = hints.protocol;
    want.ai_flags = hints.flags;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.empty() ? nullptr : service.c_str(),
                                 &want, &found);
    const std::string what = "aio::getaddrinfo(\"" + host + "\", \"" + service + "\")";
    if (rc == EAI_SYSTEM) throw_errno(what);
    if (rc != 0) throw gai_error(rc, what);
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(found, ::freeaddrinfo);
    std::vector<address_info> result;
    for (addrinfo* a = found; a; a = a->ai_next)
        result.push_back({a->ai_family, a->ai_socktype, a->ai_protocol, a->ai_canonname ? a->ai_canonname : "",
                          socket_address(a->ai_addr, a->ai_addrlen)});
    return result;
}

}  // namespace detail

// Resolves `host` (empty: the wildcard with AI_PASSIVE, else loopback) and `service`
// (a port number or a name from /etc/services). In a task of the running loop.
inline task<std::vector<address_info>> getaddrinfo(std::string host, std::string service, address_hints hints = {}) {
    // Named, not a temporary inside the co_await: g++ 12 destroys a temporary lambda
    // with init-captures there twice.
    auto job = [host = std::move(host), service = std::move(service), hints] { return detail::lookup(host, service, hints); };
    co_return co_await get_running_loop().run_in_executor(nullptr, std::move(job));
}

inline task<std::vector<address_info>> getaddrinfo(std::string host, std::uint16_t port, address_hints hints = {}) {
    std::vector<address_info> numeric;
    if (detail::numeric_answer(host, port, hints, numeric)) co_return numeric;
    co_return co_await getaddrinfo(std::move(host), std::to_string(port), hints);
}

}  // namespace aio
