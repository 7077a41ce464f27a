#pragma once
// A layer between a stream transport and its socket: what TLS (aio/tls.hpp) plugs
// into the core, as asyncio's SSLProtocol sits between the socket transport and the
// stream's protocol. Nothing here knows OpenSSL.
//
// The transport keeps the socket, its reader's buffer (plaintext) and its output
// queue (what goes on the wire); a layer installed on it is handed every byte that
// arrives and every byte the program writes, and puts back what the other side is to
// get: decrypted bytes into the reader's buffer, encrypted ones onto the output queue.
// A transport without a layer never calls one (one branch on each path).
//
// Every call comes from the loop's thread, none of them runs user code, and none may
// throw except write(). A layer is owned by its transport and destroyed with it;
// lost() is its last call before that.

#include <any>
#include <charconv>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "../../event.hpp"
#include "../../task.hpp"

namespace aio::detail {

class stream_transport;

class stream_layer {
public:
    stream_layer() = default;
    stream_layer(const stream_layer&) = delete;
    stream_layer& operator=(const stream_layer&) = delete;
    virtual ~stream_layer() = default;

    // Installed on `t`: begins (a client's hello goes out).
    virtual void start(stream_transport& t) noexcept = 0;
    // Bytes read from the socket, valid during the call only.
    virtual void received(stream_transport& t, std::string_view bytes) noexcept = 0;
    // The peer shut its side of the socket down.
    virtual void eof_received(stream_transport& t) noexcept = 0;
    // The program writes (stream_writer::write); the transport is open.
    virtual void write(stream_transport& t, std::string_view bytes) = 0;
    // The program closes: the layer ends its side, then calls t.close_transport().
    virtual void close(stream_transport& t) noexcept = 0;
    // The connection is gone (closed, aborted, failed): the last call.
    virtual void lost(stream_transport& t) noexcept = 0;
    // What stream_writer::get_extra_info(key) gives beyond the socket's keys.
    virtual std::any extra_info(std::string_view key) const = 0;

    // Set once, when the handshake has ended; handshake_error says how it failed.
    event handshake_done;
    std::exception_ptr handshake_error;
};

// How one connection's layer is made (an aio::ssl_context holds one).
struct layer_settings {
    bool server_side = false;
    std::string server_hostname{};
    std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(60);
    std::chrono::nanoseconds shutdown_timeout = std::chrono::seconds(30);
};

class stream_layer_factory {
public:
    virtual std::unique_ptr<stream_layer> make_layer(const layer_settings& settings) const = 0;
    // Shared ownership of it, for what outlives a call (a server).
    virtual std::shared_ptr<const stream_layer_factory> share() const = 0;

protected:
    ~stream_layer_factory() = default;  // owned through the derived type's shared_ptr
};

// What the stream options' `ssl` member holds: a reference to an aio::ssl_context
// (aio/tls.hpp), which converts to it; empty means plain TCP. It does not own the
// context, which must outlive the call it is given to (a connection holds its
// context once its handshake starts): the option structs stay trivially
// destructible, for g++ 12 destroys a non-trivial braced temporary twice when it is
// an argument inside a co_await expression.
class tls_ref {
public:
    tls_ref() noexcept = default;
    explicit tls_ref(const stream_layer_factory* factory) noexcept : factory_(factory) {}
    explicit operator bool() const noexcept { return factory_ != nullptr; }
    const stream_layer_factory* operator->() const noexcept { return factory_; }
    const stream_layer_factory& operator*() const noexcept { return *factory_; }

private:
    const stream_layer_factory* factory_ = nullptr;
};

// A duration as Python prints its float seconds ("60.0", "0.25"): asyncio's messages.
inline std::string seconds_text(std::chrono::nanoseconds d) {
    char text[64];
    const double seconds = std::chrono::duration<double>(d).count();
    const auto r = std::to_chars(text, text + sizeof text, seconds);
    std::string out(text, r.ptr);
    if (out.find_first_of(".e") == std::string::npos) out += ".0";
    return out;
}

// The TLS arguments of a stream call, checked as asyncio checks them: without `ssl`
// none may be given; a timeout must be positive.
inline layer_settings tls_settings(tls_ref ssl, bool server_side, std::optional<std::string_view> hostname,
                                   const std::optional<std::chrono::nanoseconds>& handshake_timeout,
                                   const std::optional<std::chrono::nanoseconds>& shutdown_timeout) {
    layer_settings s;
    if (!ssl) {
        if (hostname) throw std::invalid_argument("server_hostname is only meaningful with ssl");
        if (handshake_timeout) throw std::invalid_argument("ssl_handshake_timeout is only meaningful with ssl");
        if (shutdown_timeout) throw std::invalid_argument("ssl_shutdown_timeout is only meaningful with ssl");
        return s;
    }
    if (handshake_timeout && handshake_timeout->count() <= 0)
        throw std::invalid_argument("ssl_handshake_timeout should be a positive number, got " + seconds_text(*handshake_timeout));
    if (shutdown_timeout && shutdown_timeout->count() <= 0)
        throw std::invalid_argument("ssl_shutdown_timeout should be a positive number, got " + seconds_text(*shutdown_timeout));
    s.server_side = server_side;
    if (hostname && !server_side) s.server_hostname = std::string(*hostname);
    if (handshake_timeout) s.handshake_timeout = *handshake_timeout;
    if (shutdown_timeout) s.shutdown_timeout = *shutdown_timeout;
    return s;
}

// Until `layer`'s handshake has ended; rethrows its failure. The caller keeps the
// transport (and so the layer) alive. Cancellation: the wait ends at once; the caller
// decides what becomes of the connection.
inline task<> handshake_finished(stream_layer& layer) {
    if (!layer.handshake_done.is_set()) co_await layer.handshake_done.wait();
    if (layer.handshake_error) std::rethrow_exception(layer.handshake_error);
}

}  // namespace aio::detail
