#pragma once
// aio::socket_address: an IPv4, IPv6 or Unix socket address — what Python writes as
// ("127.0.0.1", 8080), ("::1", 8080, 0, 0) or "/run/app.sock".
//
//   auto a = aio::socket_address::ip("127.0.0.1", 8080);   // numeric only: no DNS
//   auto u = aio::socket_address::unix_path("/tmp/app.sock");
//   a.to_string();  // "127.0.0.1:8080"; IPv6 "[::1]:8080"; Unix: the path
//
// Names are resolved by aio::getaddrinfo (net/getaddrinfo.hpp), off the loop.

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace aio {

class socket_address {
public:
    socket_address() noexcept = default;

    // From the kernel's form (what accept(), getsockname() and getaddrinfo() give).
    socket_address(const sockaddr* address, socklen_t length) {
        if (length > sizeof storage_) throw std::invalid_argument("aio::socket_address: address too long");
        std::memcpy(&storage_, address, length);
        length_ = length;
    }

    // A numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "fe80::1%lo"); throws
    // std::invalid_argument for anything else, a host name included.
    static socket_address ip(std::string_view host, std::uint16_t port) {
        socket_address a;
        if (!a.parse_ip(host, port))
            throw std::invalid_argument("aio::socket_address::ip: not a numeric IP address: \"" + std::string(host) +
                                        "\" (resolve names with aio::getaddrinfo)");
        return a;
    }
    // True, and the address in `out`, when `host` is a numeric IPv4 or IPv6 address.
    static bool try_ip(std::string_view host, std::uint16_t port, socket_address& out) {
        socket_address a;
        if (!a.parse_ip(host, port)) return false;
        out = a;
        return true;
    }

    // A Unix socket path; one starting with '\0' is in Linux's abstract namespace.
    static socket_address unix_path(std::string_view path) {
        socket_address a;
        sockaddr_un un{};
        if (path.empty()) throw std::invalid_argument("aio::socket_address::unix_path: empty path");
        if (path.size() >= sizeof un.sun_path)
            throw std::invalid_argument("aio::socket_address::unix_path: path longer than " +
                                        std::to_string(sizeof un.sun_path - 1) + " bytes: " + std::string(path));
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path, path.data(), path.size());
        std::memcpy(&a.storage_, &un, sizeof un);
        a.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '\0' ? 0 : 1));
        return a;
    }

    int family() const noexcept { return length_ ? storage_.ss_family : AF_UNSPEC; }
    bool empty() const noexcept { return length_ == 0; }

    // The numeric host ("127.0.0.1", "::1"), or a Unix socket's path.
    std::string host() const {
        char text[INET6_ADDRSTRLEN] = {};
        switch (family()) {
        case AF_INET: ::inet_ntop(AF_INET, &as<sockaddr_in>().sin_addr, text, sizeof text); return text;
        case AF_INET6: {
            const auto& in6 = as<sockaddr_in6>();
            ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
            std::string h = text;
            char name[IF_NAMESIZE] = {};
            if (in6.sin6_scope_id != 0 && ::if_indextoname(in6.sin6_scope_id, name)) h += std::string("%") + name;
            return h;
        }
        case AF_UNIX: {
            const auto& un = as<sockaddr_un>();
            std::size_t n = length_ > offsetof(sockaddr_un, sun_path) ? length_ - offsetof(sockaddr_un, sun_path) : 0;
            if (n > 0 && un.sun_path[0] != '\0' && un.sun_path[n - 1] == '\0') --n;
            return std::string(un.sun_path, n);
        }
        default: return {};
        }
    }
    std::uint16_t port() const noexcept {
        switch (family()) {
        case AF_INET: return ntohs(as<sockaddr_in>().sin_port);
        case AF_INET6: return ntohs(as<sockaddr_in6>().sin6_port);
        default: return 0;
        }
    }
    // "127.0.0.1:8080", "[::1]:8080", or a Unix socket's path.
    std::string to_string() const {
        // Formatted into a buffer: g++ 12 at -O3 warns -Wrestrict (a false positive, GCC
        // bug 105329) when strings are joined here.
        char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 16];
        switch (family()) {
        case AF_INET: std::snprintf(text, sizeof text, "%s:%u", host().c_str(), unsigned{port()}); return text;
        case AF_INET6: std::snprintf(text, sizeof text, "[%s]:%u", host().c_str(), unsigned{port()}); return text;
        case AF_UNIX: return host();
        default: return "(no address)";
        }
    }

    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return length_; }
    // For calls that fill it in: the room, then the length they report.
    static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
    void resize(socklen_t length) noexcept { length_ = length; }

    friend bool operator==(const socket_address& a, const socket_address& b) noexcept {
        return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
    }

private:
    template <class T>
    const T& as() const noexcept {
        return *reinterpret_cast<const T*>(&storage_);
    }

    bool parse_ip(std::string_view host, std::uint16_t port) {
        std::string text(host);
        sockaddr_in in{};
        if (::inet_pton(AF_INET, text.c_str(), &in.sin_addr) == 1) {
            in.sin_family = AF_INET;
            in.sin_port = htons(port);
            std::memcpy(&storage_, &in, sizeof in);
            length_ = sizeof in;
            return true;
        }
        sockaddr_in6 in6{};
        std::string scope;
        if (auto percent = text.find('%'); percent != std::string::npos) {
            scope = text.substr(percent + 1);
            text.resize(percent);
        }
        if (::inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr) != 1) return false;
        if (text.size() != std::string(host).size()) {  // a '%' names the scope: an interface
            if (scope.empty()) return false;
            in6.sin6_scope_id = ::if_nametoindex(scope.c_str());
            if (in6.sin6_scope_id == 0) return false;
        }
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        std::memcpy(&storage_, &in6, sizeof in6);
        length_ = sizeof in6;
        return true;
    }

    sockaddr_storage storage_{};
    socklen_t length_ = 0;
};

}  // namespace aio
