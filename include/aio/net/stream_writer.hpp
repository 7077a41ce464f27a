#pragma once
// aio::stream_writer: the writing half of a stream (asyncio.StreamWriter).
//
//   writer.write(response);
//   co_await writer.drain();        // waits while more than the high-water mark is queued
//   writer.close();
//   co_await writer.wait_closed();
//
// write() never waits: the bytes are sent at once as far as the kernel takes them and
// the rest is queued (copied). drain() is the flow control: it returns at once unless
// more than the high-water mark (64 KiB) is queued, and then waits until the queue is
// down to the low-water mark (16 KiB), woken through the ready queue. Several tasks may
// drain at once. Once the connection is lost, drain() throws
// aio::connection_reset_error("Connection lost"), or the error that lost it, so a
// write loop to a dead peer ends at its next drain instead of spinning; write() then
// drops its bytes, as asyncio's transport does.
//
// Cancel safety: a cancelled drain() or wait_closed() changes nothing; what was
// written stays queued.
//
// close() flushes what is queued, then closes the socket (reading stops at once).
// Every TCP stream has TCP_NODELAY.
//
// TLS (aio/tls.hpp): a stream opened with `.ssl = context`, or upgraded in place by
// start_tls(context), encrypts what is written and decrypts what is read; close()
// sends close_notify and waits for the peer's (bounded by the shutdown timeout) before
// the socket closes; can_write_eof() is false and write_eof() throws, as asyncio's SSL
// transport does; get_extra_info() adds the TLS keys.

#include <sys/socket.h>

#include <any>
#include <cerrno>
#include <chrono>
#include <optional>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "../errors.hpp"
#include "../os_error.hpp"
#include "../sleep.hpp"
#include "../task.hpp"
#include "stream_reader.hpp"

namespace aio {

namespace detail {

inline task<> drain(transport_ref t) {
    rethrow_reader_error(*t);
    if (t->is_closing()) co_await sleep(std::chrono::seconds(0));  // asyncio: let connection_lost run
    if (t->lost()) throw connection_reset_error(ECONNRESET, "Connection lost");
    if (!t->writing_paused()) co_return;
    co_await t->drained().wait();
    if (t->lost() && t->error()) std::rethrow_exception(t->error());
}

inline task<> wait_closed(transport_ref t) {
    if (!t->lost()) co_await t->closed().wait();
}

// Installs the layer `ssl` makes on `t` and waits for its handshake (which ends the
// connection if it fails or times out). Cancelled: the connection is closed.
inline task<> start_layer(transport_ref t, tls_ref ssl, layer_settings settings) {
    t->install_layer(ssl->make_layer(settings));
    struct close_unless_done {
        stream_transport& t;
        bool done = false;
        ~close_unless_done() {
            if (!done) t.close();  // during the handshake: aborted
        }
    } guard{*t};
    co_await handshake_finished(*t->layer());
    guard.done = true;
}

}  // namespace detail

// start_tls's options (asyncio's StreamWriter.start_tls keyword arguments).
struct start_tls_options {
    // A client's: SNI and the name checked. Read when start_tls starts (trivially
    // destructible, as connection_options says why).
    std::optional<std::string_view> server_hostname{};
    std::optional<std::chrono::nanoseconds> ssl_handshake_timeout{};  // 60 s unless set
    std::optional<std::chrono::nanoseconds> ssl_shutdown_timeout{};   // 30 s unless set
};

namespace detail {

inline task<> start_tls(transport_ref t, tls_ref ssl, start_tls_options options) {
    if (!ssl) throw std::invalid_argument("start_tls(): no ssl context");
    if (t->layer()) throw aio::runtime_error("start_tls(): the stream already uses TLS");
    const layer_settings settings = tls_settings(ssl, t->accepted, options.server_hostname,
                                                 options.ssl_handshake_timeout, options.ssl_shutdown_timeout);
    co_await drain(t);
    if (t->is_closing()) throw aio::runtime_error("start_tls(): the stream is closing");
    co_await start_layer(t, ssl, settings);
}

}  // namespace detail

class stream_writer {
public:
    stream_writer() noexcept = default;
    explicit stream_writer(detail::transport_ref t) noexcept : t_(std::move(t)) {}

    // Queues `data` (sending what it can at once). aio::runtime_error after write_eof().
    void write(std::string_view data) const { checked()->write(data); }
    template <class Range>
    void writelines(const Range& lines) const {
        for (const auto& line : lines) write(std::string_view(line));
    }
    // Shuts the sending side down once what is queued has gone (the peer reads EOF).
    // aio::runtime_error on a TLS stream (asyncio raises NotImplementedError).
    void write_eof() const { checked()->write_eof(); }
    bool can_write_eof() const noexcept { return !(t_ && t_->layer()); }

    task<> drain() const { return detail::drain(checked()); }

    void close() const { checked()->close(); }
    bool is_closing() const { return checked()->is_closing(); }
    // Until the socket is closed (close() flushed, or the connection was lost).
    task<> wait_closed() const { return detail::wait_closed(checked()); }

    // Upgrades the open stream to TLS in place (asyncio 3.13's StreamWriter.start_tls):
    // drains, then handshakes — client-side on a stream this program opened,
    // server-side on one a server accepted — and returns once it is done. What the
    // reader had buffered before stays readable ahead of what is decrypted. `ssl` is
    // an aio::ssl_context (aio/tls.hpp). Fails (the connection closed) as
    // open_connection's handshake does; cancelled, it closes the connection.
    task<> start_tls(detail::tls_ref ssl, start_tls_options options = {}) const {
        return detail::start_tls(checked(), std::move(ssl), std::move(options));
    }

    // asyncio's get_extra_info: "peername" and "sockname" (aio::socket_address),
    // "socket" (the descriptor, an int, -1 once closed); with TLS also "peercert",
    // "cipher", "ssl_object", "version", "alpn_protocol", "sslcontext" (aio/tls.hpp says
    // their types); an empty std::any otherwise.
    std::any get_extra_info(std::string_view key) const {
        const detail::stream_transport& t = *checked();
        if (const detail::stream_layer* layer = t.layer()) [[unlikely]] {
            std::any info = layer->extra_info(key);
            if (info.has_value()) return info;
        }
        if (key == "peername") return t.peer();
        if (key == "sockname") return t.local();
        if (key == "socket") return t.fd();
        return {};
    }

    // The transport's write-buffer limits (asyncio's transport.set_write_buffer_limits).
    void set_write_buffer_limits(std::size_t high, std::size_t low) const { checked()->set_write_buffer_limits(high, low); }
    void set_write_buffer_limits(std::size_t high) const { set_write_buffer_limits(high, high / 4); }
    std::size_t get_write_buffer_size() const { return checked()->write_buffer_size(); }

private:
    const detail::transport_ref& checked() const {
        if (!t_) throw invalid_state_error("aio::stream_writer: empty (moved from, or default-constructed)");
        return t_;
    }
    detail::transport_ref t_;
};

}  // namespace aio
