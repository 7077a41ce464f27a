#pragma once
// Datagram endpoints (asyncio's loop.create_datagram_endpoint and its
// DatagramTransport): UDP over IPv4 and IPv6, and Unix datagram sockets.
//
//   aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 9999});
//   auto [data, from] = co_await server.recvfrom();
//   server.sendto(data, from);                    // never waits
//
//   aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({}, {"127.0.0.1", 9999});
//   client.send("ping");                          // to the remote address
//
// Where asyncio hands each datagram to a protocol's datagram_received, the endpoint
// queues it and recvfrom() returns it: the loop takes datagrams from the kernel as
// they arrive, whether or not a task is waiting (see detail/datagram_transport.hpp for
// the bound on the queue and what happens past it). An error the socket reports (an
// ICMP "port unreachable" after sending to a closed port on a connected endpoint:
// aio::connection_refused_error; EMSGSIZE) is asyncio's error_received: it takes its
// place among the datagrams and the receive that reaches it throws it; the endpoint
// stays usable.
//
// Resumption: recvfrom() with a datagram queued returns it without suspending;
// otherwise the task waits until the endpoint's step (queued by the socket's
// readiness, rule 4) has queued one. Several tasks may wait; each datagram goes to
// one of them.
//
// Cancel safety: a datagram leaves the queue only inside the step in which recvfrom()
// returns it, so a cancelled recvfrom() (and one that timed out in wait_for) has taken
// nothing: the datagram goes to the next receive. A cancelled drain() or wait_closed()
// changes nothing.
//
// Sending: sendto() sends at once; a datagram the kernel cannot take yet (EAGAIN) is
// queued, copied, and goes when the socket has room, in order. drain() is the flow
// control, as a stream_writer's: it waits while more than the high-water mark (64 KiB,
// counting 8 bytes a datagram as asyncio does) is queued, until the queue is down to
// the low-water mark (16 KiB). UDP over loopback never waits for room (the kernel
// drops what the receiver has no room for); Unix datagram sockets do.
//
// close() stops receiving, sends what is queued, then closes the socket; datagrams
// already received can still be taken, after which recvfrom() throws
// aio::runtime_error ("... is closed") — or the error that lost the endpoint. abort()
// drops what is queued to send. Destroying the handle closes the endpoint.

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <any>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../event_loop.hpp"
#include "../os_error.hpp"
#include "../sleep.hpp"
#include "../task.hpp"
#include "detail/datagram_transport.hpp"
#include "getaddrinfo.hpp"
#include "socket.hpp"
#include "socket_address.hpp"

namespace aio {

// asyncio's local_addr / remote_addr: none (None), a host and port to resolve, or an
// address as it is (an IP address, or a Unix path: socket_address::unix_path).
//
//   {"127.0.0.1", 9999}   {"localhost", 53}   aio::socket_address::unix_path("/run/app.sock")   {}
class datagram_address {
public:
    datagram_address() noexcept = default;
    datagram_address(std::nullopt_t) noexcept {}
    datagram_address(std::string host, std::uint16_t port) : host_(std::move(host)), port_(port), kind_(kind::host_port) {}
    datagram_address(const char* host, std::uint16_t port) : datagram_address(std::string(host), port) {}
    datagram_address(socket_address address) : address_(address), kind_(kind::address) {
        if (address.empty()) throw std::invalid_argument("aio::datagram_address: an empty socket_address");
    }

    bool empty() const noexcept { return kind_ == kind::none; }
    bool is_host_port() const noexcept { return kind_ == kind::host_port; }
    const std::string& host() const noexcept { return host_; }
    std::uint16_t port() const noexcept { return port_; }
    const socket_address& address() const noexcept { return address_; }
    std::string to_string() const {
        switch (kind_) {
        case kind::host_port: return host_ + ":" + std::to_string(port_);
        case kind::address: return address_.to_string();
        default: return "None";
        }
    }

private:
    enum class kind { none, host_port, address };
    std::string host_;
    std::uint16_t port_ = 0;
    socket_address address_{};
    kind kind_ = kind::none;
};

struct datagram_options {
    int family = AF_UNSPEC;  // AF_INET, AF_INET6 or AF_UNIX to insist (needed with no address at all)
    int proto = 0;
    int flags = 0;               // getaddrinfo's (AI_*)
    bool reuse_port = false;     // SO_REUSEPORT: several endpoints share the port
    bool allow_broadcast = false;  // SO_BROADCAST; a remote address is then not connected to
    // What the received queue may hold before receiving pauses (detail/datagram_transport.hpp).
    std::size_t queue_limit = detail::datagram_transport::default_queue_limit;
};

namespace detail {

// A reference to a datagram transport (the handle and every operation hold one).
class datagram_ref {
public:
    datagram_ref() noexcept = default;
    explicit datagram_ref(datagram_transport* t) noexcept : t_(t) {}  // adopts a reference
    datagram_ref(const datagram_ref& other) noexcept : t_(other.t_) {
        if (t_) t_->add_ref();
    }
    datagram_ref(datagram_ref&& other) noexcept : t_(std::exchange(other.t_, nullptr)) {}
    datagram_ref& operator=(datagram_ref other) noexcept {
        std::swap(t_, other.t_);
        return *this;
    }
    ~datagram_ref() {
        if (t_) t_->release();
    }
    datagram_transport* operator->() const noexcept { return t_; }
    datagram_transport& operator*() const noexcept { return *t_; }
    explicit operator bool() const noexcept { return t_ != nullptr; }

private:
    datagram_transport* t_ = nullptr;
};

inline task<std::pair<std::string, socket_address>> recvfrom(datagram_ref t) {
    for (;;) {
        if (t->has_queued()) co_return t->pop();
        if (t->lost()) {
            if (t->fatal_error()) std::rethrow_exception(t->fatal_error());
            throw aio::runtime_error("aio::datagram_endpoint::recvfrom(): the endpoint at " + t->local().to_string() +
                                     " is closed");
        }
        t->before_wait();
        co_await t->data_arrived().wait();
    }
}

inline task<> drain(datagram_ref t) {
    if (t->is_closing()) co_await sleep(std::chrono::seconds(0));  // asyncio: let connection_lost run
    if (t->lost()) throw connection_reset_error(ECONNRESET, "Connection lost");
    if (!t->writing_paused()) co_return;
    co_await t->drained().wait();
    if (t->lost() && t->fatal_error()) std::rethrow_exception(t->fatal_error());
}

inline task<> wait_closed(datagram_ref t) {
    if (!t->lost()) co_await t->closed().wait();
}

}  // namespace detail

class datagram_endpoint {
public:
    datagram_endpoint() noexcept = default;
    explicit datagram_endpoint(detail::datagram_ref t) noexcept : t_(std::move(t)) {}
    datagram_endpoint(datagram_endpoint&&) noexcept = default;
    datagram_endpoint& operator=(datagram_endpoint&& other) noexcept {
        if (this != &other) {
            if (t_) t_->close();
            t_ = std::move(other.t_);
        }
        return *this;
    }
    datagram_endpoint(const datagram_endpoint&) = delete;
    datagram_endpoint& operator=(const datagram_endpoint&) = delete;
    // Closes the endpoint (what is queued to send still goes).
    ~datagram_endpoint() {
        if (t_) t_->close();
    }

    // The next datagram and its sender's address (see the header's comment).
    task<std::pair<std::string, socket_address>> recvfrom() const { return detail::recvfrom(checked()); }

    // One datagram to `address`. On an endpoint with a remote address, `address` must be
    // that one (std::invalid_argument "Invalid address: must be None or ..."). Never
    // waits; an empty `data` is an empty datagram.
    void sendto(std::string_view data, const socket_address& address) const { checked()->sendto(data, &address); }
    // One datagram to the remote address (asyncio's sendto(data) with addr None);
    // std::invalid_argument when the endpoint has none.
    void sendto(std::string_view data) const { checked()->sendto(data, nullptr); }
    void send(std::string_view data) const { checked()->sendto(data, nullptr); }

    task<> drain() const { return detail::drain(checked()); }

    void close() const { checked()->close(); }
    void abort() const { checked()->abort(); }
    bool is_closing() const { return checked()->is_closing(); }
    // Until the socket is closed (close() sent what was queued, or abort()).
    task<> wait_closed() const { return detail::wait_closed(checked()); }

    // asyncio's get_extra_info: "socket" (the descriptor, an int, -1 once closed),
    // "sockname" (aio::socket_address), "peername" (the connected peer's
    // aio::socket_address; empty when not connected, asyncio's None); an empty
    // std::any for any other key.
    std::any get_extra_info(std::string_view key) const {
        const detail::datagram_transport& t = *checked();
        if (key == "socket") return t.fd();
        if (key == "sockname") return t.local();
        if (key == "peername" && t.connected() && t.remote()) return *t.remote();
        return {};
    }
    socket_address local_address() const { return checked()->local(); }
    // Where send() sends (asyncio's remote_addr), if anywhere.
    std::optional<socket_address> remote_address() const { return checked()->remote(); }
    // Datagrams received and not yet taken (errors included).
    std::size_t queued() const { return checked()->queued_datagrams(); }

    void set_write_buffer_limits(std::size_t high, std::size_t low) const { checked()->set_write_buffer_limits(high, low); }
    void set_write_buffer_limits(std::size_t high) const { set_write_buffer_limits(high, high / 4); }
    std::pair<std::size_t, std::size_t> get_write_buffer_limits() const {
        return {checked()->low_water(), checked()->high_water()};
    }
    // Bytes queued to send, 8 more for each datagram (asyncio 3.12's count).
    std::size_t get_write_buffer_size() const { return checked()->write_buffer_size(); }

private:
    const detail::datagram_ref& checked() const {
        if (!t_) throw invalid_state_error("aio::datagram_endpoint: empty (moved from, or default-constructed)");
        return t_;
    }
    detail::datagram_ref t_;
};

namespace detail {

inline datagram_endpoint make_endpoint(socket s, std::optional<socket_address> remote, bool connected, std::size_t limit) {
    if (limit == 0) throw std::invalid_argument("aio::create_datagram_endpoint: queue_limit must be positive");
    return datagram_endpoint(datagram_ref(datagram_transport::open(*running_loop_or_throw("aio::create_datagram_endpoint()"),
                                                                   std::move(s), std::move(remote), connected, limit)));
}

struct datagram_candidate {
    int family = AF_UNSPEC;
    int protocol = 0;
    std::optional<socket_address> local{};
    std::optional<socket_address> remote{};
};

inline int default_protocol(int family, int proto) noexcept {
    if (proto) return proto;
    return family == AF_INET || family == AF_INET6 ? IPPROTO_UDP : 0;
}

inline task<std::vector<address_info>> resolve_datagram(const datagram_address& a, const datagram_options& o) {
    if (!a.is_host_port()) {
        const int family = a.address().family();
        if (o.family != AF_UNSPEC && o.family != family)
            throw std::invalid_argument("aio::create_datagram_endpoint: the address " + a.to_string() +
                                        " is not of the family asked for");
        std::vector<address_info> one;
        one.push_back({family, SOCK_DGRAM, default_protocol(family, o.proto), {}, a.address()});
        co_return one;
    }
    if (o.family == AF_UNIX)
        throw std::invalid_argument("aio::create_datagram_endpoint: AF_UNIX takes a path (aio::socket_address::unix_path), "
                                    "not a host and port: " + a.to_string());
    std::vector<address_info> found = co_await getaddrinfo(a.host(), a.port(),
                                                           {.family = o.family, .type = SOCK_DGRAM, .protocol = o.proto, .flags = o.flags});
    if (found.empty()) throw os_error(0, "aio::create_datagram_endpoint: getaddrinfo() returned empty list for " + a.to_string());
    co_return found;
}

// asyncio removes a stale socket file where a Unix endpoint is to be bound.
inline void remove_stale_socket_file(const socket_address& local) {
    const std::string path = local.host();
    if (path.empty() || path[0] == '\0') return;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
}

}  // namespace detail

// asyncio's loop.create_datagram_endpoint: a datagram socket bound to `local` and/or
// connected to `remote` (either may be none, not both unless options.family is
// given). Each is resolved with aio::getaddrinfo (SOCK_DGRAM); the (family, protocol)
// pairs that both resolve to are tried in the resolver's order, and the first socket
// that binds and connects wins; when none does, the first failure is thrown. With
// allow_broadcast the socket is not connected: send() sends to `remote` with sendto.
//
// Cancellation: a resolution in progress is abandoned and no socket is left open.
inline task<datagram_endpoint> create_datagram_endpoint(datagram_address local = {}, datagram_address remote = {},
                                                        datagram_options options = {}) {
    if (options.queue_limit == 0) throw std::invalid_argument("aio::create_datagram_endpoint: queue_limit must be positive");
    std::vector<detail::datagram_candidate> candidates;
    if (local.empty() && remote.empty()) {
        if (options.family == AF_UNSPEC) throw std::invalid_argument("unexpected address family");
        candidates.push_back({options.family, detail::default_protocol(options.family, options.proto), {}, {}});
    } else {
        // Joined by (family, protocol), in the order first seen (asyncio's addr_infos).
        std::vector<address_info> locals, remotes;
        if (!local.empty()) locals = co_await detail::resolve_datagram(local, options);
        if (!remote.empty()) remotes = co_await detail::resolve_datagram(remote, options);
        auto slot = [&](const address_info& a) -> detail::datagram_candidate& {
            for (auto& c : candidates)
                if (c.family == a.family && c.protocol == a.protocol) return c;
            candidates.push_back({a.family, a.protocol, {}, {}});
            return candidates.back();
        };
        for (const address_info& a : locals) {
            auto& c = slot(a);
            if (!c.local) c.local = a.address;
        }
        for (const address_info& a : remotes) {
            auto& c = slot(a);
            if (!c.remote) c.remote = a.address;
        }
        std::erase_if(candidates, [&](const detail::datagram_candidate& c) {
            return (!local.empty() && !c.local) || (!remote.empty() && !c.remote);
        });
        if (candidates.empty())
            throw std::invalid_argument("can not get address information (local " + local.to_string() + ", remote " +
                                        remote.to_string() + ": no family they share)");
    }
    std::exception_ptr first_error;
    for (const detail::datagram_candidate& c : candidates) {
        try {
            socket s(c.family, SOCK_DGRAM, c.protocol);
            if (options.reuse_port) s.set_option(SOL_SOCKET, SO_REUSEPORT, 1);
            if (options.allow_broadcast) s.set_option(SOL_SOCKET, SO_BROADCAST, 1);
            if (c.local) {
                if (c.family == AF_UNIX) detail::remove_stale_socket_file(*c.local);
                s.bind(*c.local);
            }
            const bool connect = c.remote && !options.allow_broadcast;
            if (connect) co_await get_running_loop().sock_connect(s.fd(), *c.remote);
            co_return detail::make_endpoint(std::move(s), c.remote, connect, options.queue_limit);
        } catch (const os_error&) {
            if (!first_error) first_error = std::current_exception();
        }
    }
    std::rethrow_exception(first_error);
}

// An endpoint of a datagram socket the caller made (asyncio's sock= argument); the
// endpoint owns it. A socket connected already sends to its peer only (asyncio would
// send to its peer whatever address sendto is given). Refuses a socket that is not
// SOCK_DGRAM, and every option but queue_limit, as asyncio refuses them.
//
// (A template only so that `{}` as the first argument always means "no local address".)
template <class Socket>
    requires std::same_as<Socket, socket>
task<datagram_endpoint> create_datagram_endpoint(Socket sock, datagram_options options = {}) {
    if (!sock.is_open()) throw std::invalid_argument("aio::create_datagram_endpoint: the socket is closed");
    const int type = sock.option(SOL_SOCKET, SO_TYPE);
    if (type != SOCK_DGRAM)
        throw std::invalid_argument("aio::create_datagram_endpoint: a SOCK_DGRAM socket was expected, got " +
                                    std::string(type == SOCK_STREAM ? "a SOCK_STREAM" : "another type of") + " socket (descriptor " +
                                    std::to_string(sock.fd()) + ")");
    if (options.family != AF_UNSPEC || options.proto || options.flags || options.reuse_port || options.allow_broadcast)
        throw std::invalid_argument("aio::create_datagram_endpoint: socket modifier options (family, proto, flags, "
                                    "reuse_port, allow_broadcast) can not be used when a socket is given");
    std::optional<socket_address> peer;
    try {
        peer = sock.peer_address();
    } catch (const os_error&) {  // not connected
    }
    const bool connected = peer.has_value();
    co_return detail::make_endpoint(std::move(sock), std::move(peer), connected, options.queue_limit);
}

}  // namespace aio
