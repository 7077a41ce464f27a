#pragma once
// aio::ssl_context: Python's ssl.SSLContext, as ssl.create_default_context() makes
// it. Copies are handles to one SSL_CTX (changing one changes all), like references
// to one Python object; every connection made with it holds it.
//
//   aio::ssl_context ctx = aio::ssl_context::client();   // verifies, checks hostnames, system CAs
//   ctx.load_verify_locations("ca.pem");
//   auto [r, w] = co_await aio::open_connection("example.com", 443, {.ssl = ctx});
//
//   aio::ssl_context srv = aio::ssl_context::server();
//   srv.load_cert_chain("cert.pem", "key.pem");
//   co_await aio::start_server(handler, "0.0.0.0", 8443, {.ssl = srv});
//
// Failures throw aio::ssl_error with OpenSSL's reason and the file it concerns; a
// file that cannot be opened carries its errno. Configure a context before it is
// used: connections read it as they start (from the loops' threads).

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../net/detail/stream_layer.hpp"
#include "detail/context_state.hpp"
#include "detail/openssl_errors.hpp"
#include "detail/tls_layer.hpp"
#include "ssl_error.hpp"

namespace aio {

// Python's ssl.TLSVersion.
enum class tls_version : int {
    tls1 = TLS1_VERSION,
    tls1_1 = TLS1_1_VERSION,
    tls1_2 = TLS1_2_VERSION,
    tls1_3 = TLS1_3_VERSION,
};

// Python's ssl.VerifyMode: CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED.
enum class verify { none, optional, required };

class ssl_context {
public:
    // ssl.create_default_context(): TLS 1.2 at least, compression and renegotiation
    // off; the peer's certificate verified against the system's CAs, and its name
    // checked against server_hostname; Python 3.13's strict X.509 checks
    // (X509_V_FLAG_X509_STRICT) with partial chains allowed.
    static ssl_context client() {
        ssl_context c(TLS_client_method(), false);
        SSL_CTX_set_verify(c.ctx(), SSL_VERIFY_PEER, nullptr);
        c.state_->check_hostname = true;
        X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c.ctx()), X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT);
        c.set_default_verify_paths();
        return c;
    }
    // ssl.create_default_context(Purpose.CLIENT_AUTH): no client certificate asked
    // for; the server's own chain comes from load_cert_chain().
    static ssl_context server() {
        ssl_context c(TLS_server_method(), true);
        SSL_CTX_set_options(c.ctx(), SSL_OP_CIPHER_SERVER_PREFERENCE);
        SSL_CTX_set_verify(c.ctx(), SSL_VERIFY_NONE, nullptr);
        return c;
    }

    // The certificate chain (PEM, leaf first) and its private key (PEM; "": in
    // `certfile`), decrypted with `password` when it is encrypted.
    void load_cert_chain(const std::string& certfile, const std::string& keyfile = {}, const std::string& password = {}) {
        const std::string key = keyfile.empty() ? certfile : keyfile;
        struct password_scope {  // only for this call, as Python does
            SSL_CTX* ctx;
            std::string password;
            static int give(char* buffer, int size, int, void* user) {
                const auto& p = static_cast<password_scope*>(user)->password;
                if (p.empty() || p.size() > static_cast<std::size_t>(size)) return -1;
                std::memcpy(buffer, p.data(), p.size());
                return static_cast<int>(p.size());
            }
            password_scope(SSL_CTX* c, std::string p) : ctx(c), password(std::move(p)) {
                SSL_CTX_set_default_passwd_cb(ctx, give);
                SSL_CTX_set_default_passwd_cb_userdata(ctx, this);
            }
            ~password_scope() {
                SSL_CTX_set_default_passwd_cb(ctx, nullptr);
                SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
            }
        } scope(ctx(), password);
        ERR_clear_error();
        if (SSL_CTX_use_certificate_chain_file(ctx(), certfile.c_str()) != 1)
            detail::throw_ssl_queue_error("aio::ssl_context::load_cert_chain: certificate \"" + certfile + "\"");
        if (SSL_CTX_use_PrivateKey_file(ctx(), key.c_str(), SSL_FILETYPE_PEM) != 1)
            detail::throw_ssl_queue_error("aio::ssl_context::load_cert_chain: private key \"" + key + "\"");
        if (SSL_CTX_check_private_key(ctx()) != 1)
            detail::throw_ssl_queue_error("aio::ssl_context::load_cert_chain: \"" + key + "\" does not match \"" + certfile + "\"");
    }

    // Trusts the CAs in `cafile` (PEM) and/or the hashed directory `capath`.
    void load_verify_locations(const std::string& cafile, const std::string& capath = {}) {
        if (cafile.empty() && capath.empty()) throw std::invalid_argument("cafile and capath cannot be both omitted");
        ERR_clear_error();
        if (SSL_CTX_load_verify_locations(ctx(), cafile.empty() ? nullptr : cafile.c_str(), capath.empty() ? nullptr : capath.c_str()) != 1)
            detail::throw_ssl_queue_error("aio::ssl_context::load_verify_locations(\"" + (cafile.empty() ? capath : cafile) + "\")");
    }
    // Trusts the system's CAs (OpenSSL's default file and directory).
    void set_default_verify_paths() {
        ERR_clear_error();
        if (SSL_CTX_set_default_verify_paths(ctx()) != 1) detail::throw_ssl_queue_error("aio::ssl_context::set_default_verify_paths");
    }

    // ALPN: a client offers these, in order; a server picks the first of its own that
    // the client offered (none shared: no ALPN, the handshake goes on).
    void set_alpn_protocols(const std::vector<std::string>& protocols) {
        std::string wire;
        for (const std::string& p : protocols) {
            if (p.empty() || p.size() > 255) throw std::invalid_argument("ALPN protocols must be 1 to 255 in length");
            wire += static_cast<char>(p.size());
            wire += p;
        }
        if (SSL_CTX_set_alpn_protos(ctx(), reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size())) != 0)
            detail::throw_ssl_queue_error("aio::ssl_context::set_alpn_protocols");
        state_->alpn = std::move(wire);
        SSL_CTX_set_alpn_select_cb(ctx(), detail::tls_context_state::select_alpn, state_.get());
    }

    void set_minimum_version(tls_version v) {
        if (SSL_CTX_set_min_proto_version(ctx(), static_cast<int>(v)) != 1) detail::throw_ssl_queue_error("aio::ssl_context::set_minimum_version");
    }
    void set_maximum_version(tls_version v) {
        if (SSL_CTX_set_max_proto_version(ctx(), static_cast<int>(v)) != 1) detail::throw_ssl_queue_error("aio::ssl_context::set_maximum_version");
    }
    // TLS 1.2's cipher list, in OpenSSL's syntax (Python's set_ciphers).
    void set_ciphers(const std::string& ciphers) {
        ERR_clear_error();
        if (SSL_CTX_set_cipher_list(ctx(), ciphers.c_str()) != 1) detail::throw_ssl_queue_error("aio::ssl_context::set_ciphers(\"" + ciphers + "\")");
    }

    // Whether a client checks the certificate's name against server_hostname. Turning
    // it on turns verification on (Python 3.7+).
    bool check_hostname() const noexcept { return state_->check_hostname; }
    void check_hostname(bool on) {
        if (on && verify_mode() == verify::none) verify_mode(verify::required);
        state_->check_hostname = on;
    }
    verify verify_mode() const noexcept {
        const int mode = SSL_CTX_get_verify_mode(ctx());
        if (!(mode & SSL_VERIFY_PEER)) return verify::none;
        return (mode & SSL_VERIFY_FAIL_IF_NO_PEER_CERT) ? verify::required : verify::optional;
    }
    void verify_mode(verify mode) {
        if (mode == verify::none && state_->check_hostname)
            throw std::invalid_argument("Cannot set verify_mode to CERT_NONE when check_hostname is enabled.");
        const int flags = mode == verify::none       ? SSL_VERIFY_NONE
                          : mode == verify::optional ? SSL_VERIFY_PEER
                                                     : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx(), flags, nullptr);
    }
    // X509_V_FLAG_* (Python's verify_flags): client() sets X509_STRICT and PARTIAL_CHAIN.
    unsigned long verify_flags() const noexcept { return X509_VERIFY_PARAM_get_flags(SSL_CTX_get0_param(ctx())); }
    void verify_flags(unsigned long flags) {
        X509_VERIFY_PARAM* p = SSL_CTX_get0_param(ctx());
        X509_VERIFY_PARAM_clear_flags(p, X509_VERIFY_PARAM_get_flags(p));
        X509_VERIFY_PARAM_set_flags(p, flags);
    }

    bool server_side() const noexcept { return state_->server_side; }
    SSL_CTX* native_handle() const noexcept { return ctx(); }

    // What the stream options' `ssl` member and start_tls() take: a reference, so the
    // context must outlive the call (a temporary context is refused at compile time).
    operator detail::tls_ref() const& noexcept { return detail::tls_ref(state_.get()); }
    operator detail::tls_ref() const&& = delete;

private:
    ssl_context(const SSL_METHOD* method, bool server) {
        ERR_clear_error();
        SSL_CTX* c = SSL_CTX_new(method);
        if (!c) detail::throw_ssl_queue_error("aio::ssl_context: SSL_CTX_new");
        state_ = std::make_shared<detail::tls_context_state>(c, server);
        SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
        SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_SINGLE_DH_USE | SSL_OP_SINGLE_ECDH_USE);
        SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_read_ahead(c, 1);  // a memory BIO: one read takes all the records there are
    }
    SSL_CTX* ctx() const noexcept { return state_->ctx; }

    std::shared_ptr<detail::tls_context_state> state_;
};

}  // namespace aio
