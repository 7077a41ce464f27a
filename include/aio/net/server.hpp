#pragma once
// Servers (asyncio.start_server / start_unix_server and asyncio.Server).
//
//   aio::task<> handle(aio::stream_reader reader, aio::stream_writer writer) {
//       std::string line = co_await reader.readline();
//       writer.write(line);
//       co_await writer.drain();
//       writer.close();
//   }
//   aio::server srv = co_await aio::start_server(handle, "127.0.0.1", 8888);
//   co_await srv.serve_forever();
//
// Each accepted connection becomes a stream (TCP_NODELAY on TCP) and a task running
// handler(reader, writer); an exception escaping the handler goes to the loop's
// exception handler ("Unhandled exception in client_connected_cb"). The listening
// sockets are registered edge-triggered while the server serves; one step accepts up
// to `backlog` connections, then lets the other work run before it takes more.
// Running out of descriptors (EMFILE, ENFILE) or memory at accept stops accepting
// for a second, reported through the exception handler, as asyncio does; the
// connections already there carry on.
//
// TLS (asyncio's ssl=): `.ssl = context` with an aio::ssl_context from <aio/tls.hpp>.
// Each connection's handshake runs before its handler is called; one that fails or
// takes longer than ssl_handshake_timeout (60 s) closes that connection, is reported
// to the loop's exception handler ("SSL handshake failed", with the error), and its
// handler is never called.
//
// close() stops listening (the clients carry on); wait_closed() waits until the
// server is closed and every connection it accepted has ended (asyncio 3.12);
// serve_forever() serves until cancelled, then closes. The server handle is move-only;
// destroying it closes the server.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../event.hpp"
#include "../event_loop.hpp"
#include "../handle.hpp"
#include "../os_error.hpp"
#include "../task.hpp"
#include "detail/stream_transport.hpp"
#include "getaddrinfo.hpp"
#include "socket.hpp"
#include "socket_address.hpp"
#include "stream_reader.hpp"
#include "stream_writer.hpp"
#include "streams.hpp"

namespace aio {

using client_connected_handler = std::function<task<>(stream_reader, stream_writer)>;

struct server_options {
    std::size_t limit = detail::stream_transport::default_limit;  // each reader's
    int family = AF_UNSPEC;
    int backlog = 100;
    bool reuse_address = true;  // SO_REUSEADDR (asyncio's default on POSIX)
    bool reuse_port = false;    // SO_REUSEPORT: several loops (one a core) share the port
    bool start_serving = true;
    // TLS: an aio::ssl_context (aio/tls.hpp); empty: plain TCP. The server holds the
    // context from start_server on (connection_options says why the member is a
    // reference).
    detail::tls_ref ssl{};
    std::optional<std::chrono::nanoseconds> ssl_handshake_timeout{};  // 60 s unless set
    std::optional<std::chrono::nanoseconds> ssl_shutdown_timeout{};   // 30 s unless set (close_notify)
};

namespace detail {

class server_state final : io_owner {
public:
    server_state(loop_core& loop, client_connected_handler handler, std::size_t limit, int backlog)
        : loop_(&loop), handler_(std::move(handler)), limit_(limit), backlog_(backlog) {
        loop_closing = on_loop_closing;
        loop.io_owners.push_back(this);
    }
    server_state(const server_state&) = delete;
    server_state& operator=(const server_state&) = delete;

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0) delete this;
    }

    // Each connection handshakes first (server-side).
    void use_tls(const server_options& o) {
        tls_settings_ = tls_settings(o.ssl, true, std::nullopt, o.ssl_handshake_timeout, o.ssl_shutdown_timeout);
        if (o.ssl) tls_ = o.ssl->share();
    }

    void listen_on(socket s) { listeners_.push_back(std::make_unique<listener>(this, std::move(s))); }
    // A Unix server's socket file, removed when it closes if it is still the one bound
    // (asyncio 3.13's cleanup_socket).
    void own_socket_file(std::string path, ino_t inode) {
        socket_path_ = std::move(path);
        socket_inode_ = inode;
    }

    void start_serving() {
        if (closed_) throw aio::runtime_error("aio::server is closed");
        if (serving_) return;
        for (const auto& l : listeners_) {
            try {
                l->watch(*loop_);
            } catch (...) {
                stop_watching();
                throw;
            }
        }
        serving_ = true;
    }
    bool is_serving() const noexcept { return serving_; }

    void close() noexcept {
        if (closed_) return;
        closed_ = true;
        stop_watching();
        listeners_.clear();
        serving_ = false;
        if (!socket_path_.empty()) {
            struct stat st {};
            if (::stat(socket_path_.c_str(), &st) == 0 && st.st_ino == socket_inode_) ::unlink(socket_path_.c_str());
            socket_path_.clear();
        }
        if (retry_) {
            retry_.cancel();
            retry_ = {};
        }
        if (connections_.empty()) idle_.set();
        forever_.set();
    }
    bool closed() const noexcept { return closed_; }
    event& idle() noexcept { return idle_; }
    event& forever() noexcept { return forever_; }

    std::vector<socket_address> addresses() const {
        std::vector<socket_address> out;
        for (const auto& l : listeners_) out.push_back(l->sock.local_address());
        return out;
    }
    std::vector<int> descriptors() const {
        std::vector<int> out;
        for (const auto& l : listeners_) out.push_back(l->sock.fd());
        return out;
    }

    void close_clients() noexcept {
        for (connection* c : std::vector<connection*>(connections_.begin(), connections_.end())) c->transport->close();
    }
    void abort_clients() noexcept {
        for (connection* c : std::vector<connection*>(connections_.begin(), connections_.end())) c->transport->abort();
    }

private:
    // One accepted connection, until its transport is lost.
    struct connection : stream_transport::lost_hook {
        server_state* server;
        stream_transport* transport;
        std::size_t index;  // in connections_
    };

    // A listening socket, registered edge-triggered while the server serves, as a
    // stream's socket is: an edge queues the step, which accepts until the backlog is
    // empty, or takes `backlog` connections and queues itself behind the other work.
    struct listener : io_node {
        listener(server_state* owner, socket s) noexcept : server(owner), sock(std::move(s)) { run = step; }
        listener(const listener&) = delete;
        listener& operator=(const listener&) = delete;

        void watch(loop_core& loop) {
            if (registered) return;
            loop.add_io(sock.fd(), this, io_readable | io_edge);
            registered = true;
        }
        void stop_watching(loop_core& loop) noexcept {
            if (registered) loop.remove_io(sock.fd(), this);
            registered = false;
        }
        static void step(ready_item* item) noexcept {
            auto& l = static_cast<listener&>(static_cast<io_node&>(*item));
            l.events = 0;
            l.server->accept_ready(l);
        }

        server_state* server;
        socket sock;
        bool registered = false;
    };

    ~server_state() {
        close();
        if (links.prev && loop_) loop_->io_owners.unlink(this);
    }

    void stop_watching() noexcept {
        if (!loop_) return;
        for (const auto& l : listeners_) l->stop_watching(*loop_);
    }

    void accept_ready(listener& l) noexcept {
        for (int i = 0; serving_; ++i) {
            if (i == backlog_) {  // more may be waiting: the others first
                if (l.queued_at == not_queued) loop_->push(&l);
                return;
            }
            const int conn = ::accept4(l.sock.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (conn < 0) {
                const int err = errno;
                if (err == EAGAIN || err == EWOULDBLOCK) return;  // drained: the next edge wakes it
                if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) return pause_accepting(err);
                if (accept_may_retry(err)) continue;
                // Anything else is reported; the step runs again next iteration, as a
                // level-triggered listener would, so that connections still queued
                // are not left waiting for the next edge.
                report(err, "accept");
                if (l.queued_at == not_queued) loop_->push(&l);
                return;
            }
            try {
                serve(socket::own(conn));
            } catch (...) {
                loop_->report({"Error while starting a connection of aio::server", std::current_exception(), {}});
            }
        }
    }

    // An interrupted call, or a connection that failed before it was taken (accept(2):
    // Linux passes the new socket's pending network errors to accept).
    static bool accept_may_retry(int err) noexcept {
        switch (err) {
        case EINTR: case ECONNABORTED: case EPROTO: case ENOPROTOOPT: case ENETDOWN:
        case ENETUNREACH: case EHOSTDOWN: case EHOSTUNREACH: case ENONET: case EOPNOTSUPP:
            return true;
        default:
            return false;
        }
    }

    void serve(socket s) {
        detail::no_delay(s);
        transport_ref reading(stream_transport::open(*loop_, std::move(s), limit_));
        reading->accepted = true;
        if (tls_) [[unlikely]]
            reading->install_layer(tls_->make_layer(tls_settings_));
        auto* c = new connection;
        c->lost = on_connection_lost;
        c->server = this;
        c->transport = reading.get();
        c->index = connections_.size();
        connections_.push_back(c);
        add_ref();
        reading->on_lost(c);
        transport_ref writing = reading;
        add_ref();  // the handler's task holds one
        stream_layer* layer = reading->layer();
        loop_->owner().create_task(run_client(this, stream_reader(std::move(reading)), stream_writer(std::move(writing)), layer));
    }

    static task<> run_client(server_state* self, stream_reader reader, stream_writer writer, stream_layer* layer) {
        struct hold {
            server_state* s;
            ~hold() { s->release(); }
        } held{self};
        if (layer) [[unlikely]] {  // the reader keeps the transport, and so the layer
            std::exception_ptr failed;
            try {
                co_await handshake_finished(*layer);
            } catch (const std::exception&) {
                failed = std::current_exception();
            }
            if (failed) {  // the connection is closed already
                self->loop_->report({"SSL handshake failed", failed, {}});
                co_return;
            }
        }
        try {
            co_await self->handler_(std::move(reader), std::move(writer));
        } catch (const std::exception&) {
            self->loop_->report({"Unhandled exception in client_connected_cb", std::current_exception(), {}});
        }
    }

    static void on_connection_lost(stream_transport::lost_hook* hook, stream_transport&) noexcept {
        auto* c = static_cast<connection*>(hook);
        server_state& s = *c->server;
        connection* last = s.connections_.back();
        last->index = c->index;
        s.connections_[c->index] = last;
        s.connections_.pop_back();
        delete c;
        if (s.closed_ && s.connections_.empty()) s.idle_.set();
        s.release();
    }

    void pause_accepting(int err) noexcept {
        report(err, "accept (out of system resources; accepting again in 1 second)");
        stop_watching();
        serving_ = false;
        try {
            retry_ = loop_->owner().call_later(std::chrono::seconds(1), [this] {
                retry_ = {};
                if (!closed_) start_serving();
            });
        } catch (...) {
        }
    }

    void report(int err, const char* call) noexcept {
        try {
            throw_os_error(err, std::string("aio::server: ") + call);
        } catch (...) {
            loop_->report({"Error on a listening socket of aio::server", std::current_exception(), {}});
        }
    }

    static void on_loop_closing(io_owner* owner) noexcept {
        auto& s = static_cast<server_state&>(*owner);
        s.close();
        s.loop_ = nullptr;
    }

    loop_core* loop_;
    client_connected_handler handler_;
    std::size_t limit_;
    int backlog_;
    std::vector<std::unique_ptr<listener>> listeners_;
    std::vector<connection*> connections_;
    event idle_;     // closed, and no connection left
    event forever_;  // closed: serve_forever() returns
    timer_handle retry_;
    std::shared_ptr<const stream_layer_factory> tls_;
    layer_settings tls_settings_;
    std::string socket_path_;
    ino_t socket_inode_ = 0;
    std::uint32_t refs_ = 1;
    bool serving_ = false;
    bool closed_ = false;
};

inline task<> serve_forever(server_state* s) {
    struct hold {
        server_state* s;
        ~hold() { s->release(); }
    } held{s};
    if (s->closed()) throw aio::runtime_error("aio::server is closed");
    s->start_serving();
    try {
        co_await s->forever().wait();
    } catch (...) {  // cancelled: close, wait, and end cancelled (asyncio's serve_forever)
        s->close();
        throw;
    }
}

inline task<> wait_closed(server_state* s) {
    struct hold {
        server_state* s;
        ~hold() { s->release(); }
    } held{s};
    co_await s->idle().wait();
}

}  // namespace detail

class server {
public:
    server() noexcept = default;
    explicit server(detail::server_state* s) noexcept : s_(s) {}
    server(server&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
    server& operator=(server&& other) noexcept {
        if (this != &other) {
            reset();
            s_ = std::exchange(other.s_, nullptr);
        }
        return *this;
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server() { reset(); }

    // Stops listening; the connections carry on (close_clients() ends them).
    void close() const noexcept {
        if (s_) s_->close();
    }
    // Until closed and every accepted connection has ended.
    task<> wait_closed() const { return detail::wait_closed(hold()); }
    // Serves until cancelled; then closes and ends cancelled.
    task<> serve_forever() const { return detail::serve_forever(hold()); }
    void start_serving() const { checked().start_serving(); }
    bool is_serving() const noexcept { return s_ && s_->is_serving(); }
    // Where it listens (asyncio's server.sockets, as addresses), and the descriptors.
    std::vector<socket_address> sockets() const { return checked().addresses(); }
    std::vector<int> descriptors() const { return checked().descriptors(); }
    void close_clients() const noexcept {
        if (s_) s_->close_clients();
    }
    void abort_clients() const noexcept {
        if (s_) s_->abort_clients();
    }

private:
    detail::server_state& checked() const {
        if (!s_) throw invalid_state_error("aio::server: empty (moved from, or default-constructed)");
        return *s_;
    }
    detail::server_state* hold() const {
        checked().add_ref();
        return s_;
    }
    void reset() noexcept {
        if (detail::server_state* s = std::exchange(s_, nullptr)) {
            s->close();
            s->release();
        }
    }
    detail::server_state* s_ = nullptr;
};

namespace detail {

inline socket listening_socket(const address_info& a, const server_options& options, bool several) {
    socket s(a.family, SOCK_STREAM, a.protocol);
    if (options.reuse_address) s.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
    if (options.reuse_port) s.set_option(SOL_SOCKET, SO_REUSEPORT, 1);
    // Listening on :: and 0.0.0.0 together: each family its own socket (asyncio).
    if (a.family == AF_INET6 && several) s.set_option(IPPROTO_IPV6, IPV6_V6ONLY, 1);
    if (::bind(s.fd(), a.address.data(), a.address.size()) < 0) {
        const int err = errno;
        throw_os_error(err, "error while attempting to bind on address " + a.address.to_string());
    }
    s.listen(options.backlog);
    return s;
}

}  // namespace detail

// Listens on `host`:`port` (host "": every interface, IPv4 and IPv6; port 0: one the
// kernel picks — see server::sockets()).
inline task<server> start_server(client_connected_handler handler, std::string host, std::uint16_t port,
                                 server_options options = {}) {
    if (!handler) throw std::invalid_argument("aio::start_server: an empty handler");
    if (options.limit == 0) throw std::invalid_argument("Limit cannot be <= 0");
    std::vector<address_info> addresses;
    if (host.empty()) {
        addresses = co_await getaddrinfo("", std::to_string(port),
                                         {.family = options.family, .type = SOCK_STREAM, .flags = AI_PASSIVE});
    } else {
        addresses = co_await getaddrinfo(host, port, {.family = options.family, .type = SOCK_STREAM});
    }
    auto* state = new detail::server_state(*detail::running_loop_or_throw("aio::start_server()"), std::move(handler),
                                           options.limit, options.backlog);
    server srv(state);
    state->use_tls(options);
    for (const address_info& a : addresses) state->listen_on(detail::listening_socket(a, options, addresses.size() > 1));
    if (options.start_serving) srv.start_serving();
    co_return srv;
}

// Serves on a socket the caller made and bound, TCP or Unix (asyncio's
// create_server(sock=...)): it listens with options.backlog, and the server owns and
// closes it. The options about making the socket (family, reuse_address, reuse_port)
// do not apply; set them on the socket before binding it.
inline task<server> start_server(client_connected_handler handler, socket listening, server_options options = {}) {
    if (!handler) throw std::invalid_argument("aio::start_server: an empty handler");
    if (options.limit == 0) throw std::invalid_argument("Limit cannot be <= 0");
    detail::check_stream_socket(listening, "aio::start_server");
    listening.listen(options.backlog);
    auto* state = new detail::server_state(*detail::running_loop_or_throw("aio::start_server()"), std::move(handler),
                                           options.limit, options.backlog);
    server srv(state);
    state->use_tls(options);
    state->listen_on(std::move(listening));
    if (options.start_serving) srv.start_serving();
    co_return srv;
}

// Listens on the Unix socket `path`. A stale socket file there is removed first, and
// the file is removed when the server closes, if it is still the one it bound
// (asyncio 3.13's cleanup_socket).
inline task<server> start_unix_server(client_connected_handler handler, std::string path, server_options options = {}) {
    if (!handler) throw std::invalid_argument("aio::start_unix_server: an empty handler");
    if (options.limit == 0) throw std::invalid_argument("Limit cannot be <= 0");
    const socket_address address = socket_address::unix_path(path);
    auto* state = new detail::server_state(*detail::running_loop_or_throw("aio::start_unix_server()"), std::move(handler),
                                           options.limit, options.backlog);
    server srv(state);
    state->use_tls(options);
    socket s(AF_UNIX, SOCK_STREAM);
    if (path[0] != '\0') {
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
    }
    if (::bind(s.fd(), address.data(), address.size()) < 0) {
        const int err = errno;
        detail::throw_os_error(err, "error while attempting to bind on address " + path);
    }
    s.listen(options.backlog);
    if (path[0] != '\0') {
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0) state->own_socket_file(path, st.st_ino);
    }
    state->listen_on(std::move(s));
    if (options.start_serving) srv.start_serving();
    co_return srv;
}

}  // namespace aio
