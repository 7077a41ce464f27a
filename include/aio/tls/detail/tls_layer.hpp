#pragma once
// TLS over a stream transport: asyncio's SSLProtocol, on OpenSSL, as a stream_layer.
//
// OpenSSL never sees the socket. Its one BIO reads from the bytes the transport just
// received (its scratch block, so nothing is copied on the way in) and writes each
// record straight onto the transport's output queue; the transport then sends the
// queue in as few sends as the socket allows. What decrypts goes into the reader's
// buffer in a loop until OpenSSL wants more, so the reader's limit, pausing, drain()
// and cancel safety are the plain stream's. Steady state allocates nothing: the
// output queue keeps its block, small reads decrypt through a thread's block.
//
// States (asyncio's SSLProtocolState, FLUSHING folded into SHUTDOWN since writes are
// encrypted at once):
//   handshaking    writes wait in the backlog; the handshake timer runs
//   wrapped        reading and writing
//   shutting_down  our close_notify is out; reading until the peer's, the shutdown
//                  timer runs; writes are dropped
//   closed         the connection is being or has been closed

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <any>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "../../errors.hpp"
#include "../../event_loop.hpp"
#include "../../handle.hpp"
#include "../../net/detail/byte_buffer.hpp"
#include "../../net/detail/stream_layer.hpp"
#include "../../net/detail/stream_transport.hpp"
#include "../../os_error.hpp"
#include "../ssl_error.hpp"
#include "../ssl_object.hpp"
#include "context_state.hpp"
#include "openssl_errors.hpp"

namespace aio::detail {

class tls_layer final : public stream_layer {
public:
    static constexpr std::size_t record_room = 16384;                    // one record's plaintext
    static constexpr std::size_t write_chunk = std::size_t{128} << 10;   // encrypted before a send

    tls_layer(std::shared_ptr<const tls_context_state> context, const layer_settings& settings)
        : context_(std::move(context)), settings_(settings) {
        ERR_clear_error();
        ssl_ = SSL_new(context_->ctx);
        if (!ssl_) throw_ssl_queue_error("aio: SSL_new");
        BIO* bio = BIO_new(bio_method());
        if (!bio) {
            SSL_free(ssl_);
            throw_ssl_queue_error("aio: BIO_new");
        }
        BIO_set_data(bio, this);
        BIO_set_init(bio, 1);
        SSL_set_bio(ssl_, bio, bio);  // one reference, both directions
        if (settings_.server_side) {
            SSL_set_accept_state(ssl_);
            return;
        }
        SSL_set_connect_state(ssl_);
        const std::string& host = settings_.server_hostname;
        if (host.empty()) {
            if (context_->check_hostname) {
                SSL_free(ssl_);
                throw std::invalid_argument("check_hostname requires server_hostname");
            }
            return;
        }
        unsigned char address[16];
        const bool numeric = ::inet_pton(AF_INET, host.c_str(), address) == 1 || ::inet_pton(AF_INET6, host.c_str(), address) == 1;
        bool ok = numeric || SSL_set_tlsext_host_name(ssl_, host.c_str()) == 1;  // SNI names no address (RFC 6066)
        if (ok && context_->check_hostname) {
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = numeric ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1
                         : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) == 1;
        }
        if (!ok) {
            SSL_free(ssl_);
            throw_ssl_queue_error("aio: server_hostname \"" + host + "\"");
        }
    }
    ~tls_layer() override { SSL_free(ssl_); }  // and the BIO

    void start(stream_transport& t) noexcept override {
        t_ = &t;
        try {
            handshake_timer_ = t.loop().owner().call_later(settings_.handshake_timeout, [this] { handshake_timed_out(); });
        } catch (...) {
            fail(t, std::current_exception());
            return;
        }
        if (!settings_.server_side) {  // the ClientHello
            ERR_clear_error();
            handshake(t);
            t.send_output();
        }
    }

    void received(stream_transport& t, std::string_view bytes) noexcept override {
        if (state_ == state::closed) return;
        ERR_clear_error();
        try {
            if (pending_.empty()) {
                source_ = bytes;
                pump(t);
                if (!source_.empty() && state_ != state::closed) pending_.append(source_);
            } else {  // a record left over from before (rare): the new bytes follow it
                pending_.append(bytes);
                source_ = pending_.view();
                pump(t);
                if (state_ != state::closed) pending_.consume(pending_.size() - source_.size());
            }
        } catch (...) {  // no memory for the leftover
            fail(t, std::current_exception());
        }
        source_ = {};
        t.send_output();
    }

    void eof_received(stream_transport& t) noexcept override {
        eof_ = true;
        ERR_clear_error();
        source_ = pending_.view();
        switch (state_) {
        case state::handshaking:  // asyncio: ConnectionResetError
            fail(t, std::make_exception_ptr(connection_reset_error(ECONNRESET, "aio: the peer closed the connection during the TLS handshake")));
            break;
        case state::wrapped:  // no close_notify: what was read may have been cut short
            read(t);
            if (state_ == state::wrapped)
                fail(t, std::make_exception_ptr(ssl_eof_error("[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol",
                                                              "SSL", "UNEXPECTED_EOF_WHILE_READING")));
            break;
        case state::shutting_down:  // ours went; the peer closed without its own (asyncio: clean)
            finish_shutdown(t);
            break;
        case state::closed:
            break;
        }
        source_ = {};
        t.send_output();
    }

    void write(stream_transport& t, std::string_view bytes) override {
        switch (state_) {
        case state::handshaking:
            backlog_.append(bytes);
            return;
        case state::wrapped:
            ERR_clear_error();
            encrypt(t, bytes);
            t.send_output();
            return;
        default:  // closing: dropped, as asyncio drops them
            return;
        }
    }

    void close(stream_transport& t) noexcept override {
        switch (state_) {
        case state::handshaking:  // asyncio aborts
            state_ = state::closed;
            t.fail_layered(nullptr);
            return;
        case state::wrapped:
            ERR_clear_error();
            begin_shutdown(t);
            t.send_output();
            return;
        default:
            return;
        }
    }

    void lost(stream_transport& t) noexcept override {
        state_ = state::closed;
        handshake_timer_.cancel();
        handshake_timer_ = {};
        shutdown_timer_.cancel();
        shutdown_timer_ = {};
        pending_.release();
        backlog_.release();
        if (!handshake_done.is_set()) {
            handshake_error = t.error();
            if (!handshake_error)
                handshake_error = std::make_exception_ptr(
                    connection_reset_error(ECONNRESET, "aio: the connection was closed before the TLS handshake finished"));
            handshake_done.set();
        }
    }

    std::any extra_info(std::string_view key) const override {
        if (!handshaken_) return {};
        if (key == "ssl_object") return ssl_object(ssl_);
        if (key == "cipher") return ssl_object(ssl_).cipher();
        if (key == "version") return ssl_object(ssl_).version();
        if (key == "alpn_protocol") {
            if (auto p = ssl_object(ssl_).selected_alpn_protocol()) return *p;
            return {};
        }
        if (key == "peercert") {
            std::optional<peer_certificate> cert = ssl_object(ssl_).getpeercert();
            if (!cert) return {};
            if (SSL_get_verify_mode(ssl_) == SSL_VERIFY_NONE) return peer_certificate{};  // Python: {} when not validated
            return *cert;
        }
        return {};
    }

private:
    enum class state { handshaking, wrapped, shutting_down, closed };

    void pump(stream_transport& t) {
        if (state_ == state::handshaking && !handshake(t)) return;
        if (state_ == state::wrapped) {
            read(t);
        } else if (state_ == state::shutting_down) {
            shutdown(t);
        }
    }

    // True once it is over.
    bool handshake(stream_transport& t) noexcept {
        const int r = SSL_do_handshake(ssl_);
        if (r == 1) {
            handshake_timer_.cancel();
            handshake_timer_ = {};
            state_ = state::wrapped;
            handshaken_ = true;
            handshake_done.set();
            if (!backlog_.empty()) {
                encrypt(t, backlog_.view());
                backlog_.release();
            }
            return state_ == state::wrapped;
        }
        const int code = SSL_get_error(ssl_, r);
        if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) fail(t, ssl_call_error(ssl_, code, eof_, settings_.server_hostname));
        return false;
    }

    // Everything that decrypts, into the reader's buffer.
    void read(stream_transport& t) noexcept {
        byte_buffer& in = t.plain_input();
        char* scratch = plain_scratch();
        for (;;) {
            const bool direct = in.room() >= record_room || !scratch;
            char* room = scratch;
            std::size_t offered = scratch_size;
            if (direct) {
                try {
                    room = in.prepare(record_room);
                } catch (...) {
                    fail(t, std::current_exception());
                    return;
                }
                offered = std::min<std::size_t>(in.room(), INT_MAX);
            }
            const int n = SSL_read(ssl_, room, static_cast<int>(offered));
            if (n > 0) {
                if (direct) {
                    in.commit(static_cast<std::size_t>(n));
                } else {
                    try {
                        in.append(std::string_view(room, static_cast<std::size_t>(n)));
                    } catch (...) {
                        fail(t, std::current_exception());
                        return;
                    }
                }
                continue;
            }
            const int code = SSL_get_error(ssl_, n);
            if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return;
            if (code == SSL_ERROR_ZERO_RETURN) {  // close_notify: EOF for the reader; ours goes back
                t.plain_eof();
                begin_shutdown(t);
                return;
            }
            fail(t, ssl_call_error(ssl_, code, eof_, settings_.server_hostname));
            return;
        }
    }

    void encrypt(stream_transport& t, std::string_view bytes) noexcept {
        while (!bytes.empty()) {
            const std::size_t chunk = std::min(bytes.size(), write_chunk);
            const int n = SSL_write(ssl_, bytes.data(), static_cast<int>(chunk));
            if (n <= 0) {
                fail(t, ssl_call_error(ssl_, SSL_get_error(ssl_, n), eof_, settings_.server_hostname));
                return;
            }
            bytes.remove_prefix(static_cast<std::size_t>(n));
            if (!bytes.empty()) t.send_output();
            if (t.lost()) return;
        }
    }

    void begin_shutdown(stream_transport& t) noexcept {
        state_ = state::shutting_down;
        try {
            shutdown_timer_ = t.loop().owner().call_later(settings_.shutdown_timeout, [this] { shutdown_timed_out(); });
        } catch (...) {  // without the timer a silent peer would hold the connection for ever
            fail(t, std::current_exception());
            return;
        }
        shutdown(t);
    }

    void shutdown(stream_transport& t) noexcept {
        const int r = SSL_shutdown(ssl_);
        if (r == 1) return finish_shutdown(t);
        if (r == 0) return;  // ours went; theirs is awaited
        const int code = SSL_get_error(ssl_, r);
        if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return;
        fail(t, ssl_call_error(ssl_, code, eof_, settings_.server_hostname));
    }

    void finish_shutdown(stream_transport& t) noexcept {
        shutdown_timer_.cancel();
        shutdown_timer_ = {};
        state_ = state::closed;
        t.send_output();
        t.close_transport();
    }

    // The connection cannot go on: what OpenSSL queued (an alert) is sent if the socket
    // takes it, then the connection is lost with `e`.
    void fail(stream_transport& t, std::exception_ptr e) noexcept {
        state_ = state::closed;
        ERR_clear_error();
        t.send_output();
        t.fail_layered(std::move(e));
    }

    void handshake_timed_out() noexcept {
        handshake_timer_ = {};
        if (state_ != state::handshaking) return;
        state_ = state::closed;
        std::exception_ptr e;
        try {
            throw connection_aborted_error(ECONNABORTED, "SSL handshake is taking longer than " + seconds_text(settings_.handshake_timeout) +
                                                             " seconds: aborting the connection");
        } catch (...) {
            e = std::current_exception();
        }
        t_->fail_from_outside(std::move(e));  // may free the transport, and this layer
    }

    void shutdown_timed_out() noexcept {
        shutdown_timer_ = {};
        if (state_ != state::shutting_down) return;
        state_ = state::closed;
        std::exception_ptr e;
        try {
            throw timeout_error("SSL shutdown timed out");
        } catch (...) {
            e = std::current_exception();
        }
        t_->fail_from_outside(std::move(e));  // may free the transport, and this layer
    }

    // --- the BIO: reads from source_, writes onto the transport's output queue

    static int bio_read(BIO* bio, char* out, int length) {
        auto& self = *static_cast<tls_layer*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        if (self.source_.empty()) {
            if (self.eof_) return 0;
            BIO_set_retry_read(bio);
            return -1;
        }
        const std::size_t n = std::min(self.source_.size(), static_cast<std::size_t>(std::max(length, 0)));
        std::memcpy(out, self.source_.data(), n);
        self.source_.remove_prefix(n);
        return static_cast<int>(n);
    }
    static int bio_write(BIO* bio, const char* data, int length) {
        auto& self = *static_cast<tls_layer*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        if (!self.t_ || length < 0) return -1;
        try {
            self.t_->wire_output().append(std::string_view(data, static_cast<std::size_t>(length)));
        } catch (...) {
            return -1;
        }
        return length;
    }
    static long bio_ctrl(BIO* bio, int command, long, void*) {
        auto& self = *static_cast<tls_layer*>(BIO_get_data(bio));
        switch (command) {
        case BIO_CTRL_FLUSH: return 1;
        case BIO_CTRL_EOF: return self.eof_ && self.source_.empty() ? 1 : 0;
        case BIO_CTRL_PENDING: return static_cast<long>(self.source_.size());
        case BIO_CTRL_WPENDING: return 0;
        default: return 0;
        }
    }
    static BIO_METHOD* bio_method() {
        static BIO_METHOD* const method = [] {
            BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "aio stream transport");
            if (m) {
                BIO_meth_set_read(m, bio_read);
                BIO_meth_set_write(m, bio_write);
                BIO_meth_set_ctrl(m, bio_ctrl);
            }
            return m;
        }();
        return method;
    }

    // Where a small record decrypts before it joins the reader's buffer: one block a
    // thread (an idle connection's buffer stays small).
    static constexpr std::size_t scratch_size = 2 * record_room;
    static char* plain_scratch() noexcept {
        static thread_local std::unique_ptr<char[]> block;
        if (!block) block.reset(new (std::nothrow) char[scratch_size]);
        return block.get();
    }

    std::shared_ptr<const tls_context_state> context_;
    layer_settings settings_;
    SSL* ssl_ = nullptr;
    stream_transport* t_ = nullptr;
    std::string_view source_;  // what the BIO reads from, during a call
    byte_buffer pending_;      // ciphertext OpenSSL has not taken yet
    byte_buffer backlog_;      // written before the handshake was over
    timer_handle handshake_timer_;
    timer_handle shutdown_timer_;
    state state_ = state::handshaking;
    bool eof_ = false;         // the socket's EOF has reached the BIO
    bool handshaken_ = false;
};

inline std::unique_ptr<stream_layer> tls_context_state::make_layer(const layer_settings& settings) const {
    if (settings.server_side != server_side)
        throw std::invalid_argument(server_side ? "aio: a server ssl_context (ssl_context::server()) cannot make a client connection"
                                                : "aio: a client ssl_context (ssl_context::client()) cannot serve a connection");
    return std::make_unique<tls_layer>(shared_from_this(), settings);
}

}  // namespace aio::detail
