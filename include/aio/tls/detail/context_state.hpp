#pragma once
// What an aio::ssl_context shares among its copies: the SSL_CTX and the settings
// OpenSSL does not keep (whether hostnames are checked, the server's ALPN list). It
// is the core's stream_layer_factory: each connection's layer comes from it, and
// holds it (the ALPN callback reads it).

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "../../net/detail/stream_layer.hpp"

namespace aio::detail {

class tls_context_state final : public stream_layer_factory, public std::enable_shared_from_this<tls_context_state> {
public:
    explicit tls_context_state(SSL_CTX* context, bool server) noexcept : ctx(context), server_side(server) {}
    tls_context_state(const tls_context_state&) = delete;
    tls_context_state& operator=(const tls_context_state&) = delete;
    ~tls_context_state() { SSL_CTX_free(ctx); }

    std::unique_ptr<stream_layer> make_layer(const layer_settings& settings) const override;  // tls_layer.hpp
    std::shared_ptr<const stream_layer_factory> share() const override { return shared_from_this(); }

    // The server's choice among the client's protocols: the first of its own list the
    // client offers (Python's order); none shared: no ALPN at all.
    static int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
                           unsigned in_length, void* arg) {
        const auto& self = *static_cast<const tls_context_state*>(arg);
        if (self.alpn.empty()) return SSL_TLSEXT_ERR_NOACK;
        unsigned char* chosen = nullptr;
        if (SSL_select_next_proto(&chosen, out_length, reinterpret_cast<const unsigned char*>(self.alpn.data()),
                                  static_cast<unsigned>(self.alpn.size()), in, in_length) != OPENSSL_NPN_NEGOTIATED)
            return SSL_TLSEXT_ERR_NOACK;
        *out = chosen;
        return SSL_TLSEXT_ERR_OK;
    }

    SSL_CTX* ctx;
    bool server_side;
    bool check_hostname = false;
    std::string alpn;  // wire format: a length byte before each protocol
};

}  // namespace aio::detail
