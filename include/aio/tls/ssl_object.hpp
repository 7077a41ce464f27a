#pragma once
// What a TLS stream tells about its session (asyncio's get_extra_info TLS keys):
//
//   auto ssl = std::any_cast<aio::ssl_object>(writer.get_extra_info("ssl_object"));
//   ssl.version();                 // "TLSv1.3"
//   ssl.cipher().name;             // "TLS_AES_256_GCM_SHA384"
//   ssl.selected_alpn_protocol();  // "h2", or nullopt
//   SSL* native = ssl.native_handle();
//
// An ssl_object shares the connection's SSL (a reference of its own), so it stays
// valid after the stream is gone. peer_certificate is Python's getpeercert() dict.

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aio {

// Python's SSLObject.cipher(): (name, protocol version, secret bits).
struct tls_cipher {
    std::string name{};
    std::string version{};
    int bits = 0;
};

// Python's getpeercert(): names as (attribute, value) in certificate order, with
// Python's long attribute names ("commonName", "organizationName"); dates as Python
// prints them ("Jan  5 09:34:43 2026 GMT"); alternative names as ("DNS", "localhost"),
// ("IP Address", "127.0.0.1"), ("email", ...), ("URI", ...).
struct peer_certificate {
    using names = std::vector<std::pair<std::string, std::string>>;
    names subject{};
    names issuer{};
    long version = 0;
    std::string serial_number{};  // upper-case hex
    std::string not_before{};
    std::string not_after{};
    names subject_alt_name{};

    // The first value of `attribute` in `of` ("" when there is none).
    static std::string find(const names& of, const std::string& attribute) {
        for (const auto& [k, v] : of)
            if (k == attribute) return v;
        return {};
    }
};

namespace detail {

inline peer_certificate::names x509_names(const X509_NAME* name) {
    peer_certificate::names out;
    for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
        const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
        const ASN1_OBJECT* object = X509_NAME_ENTRY_get_object(e);
        const int nid = OBJ_obj2nid(object);
        std::string key;
        if (nid != NID_undef) {
            key = OBJ_nid2ln(nid);
        } else {
            char text[128];
            OBJ_obj2txt(text, sizeof text, object, 1);
            key = text;
        }
        unsigned char* utf8 = nullptr;
        const int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
        std::string value = n >= 0 ? std::string(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n)) : std::string();
        OPENSSL_free(utf8);
        out.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

inline std::string asn1_time_text(const ASN1_TIME* t) {
    BIO* b = BIO_new(BIO_s_mem());
    if (!b) return {};
    ASN1_TIME_print(b, t);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string out(data, n > 0 ? static_cast<std::size_t>(n) : 0);
    BIO_free(b);
    return out;
}

inline peer_certificate decode_certificate(X509* cert) {
    peer_certificate c;
    c.subject = x509_names(X509_get_subject_name(cert));
    c.issuer = x509_names(X509_get_issuer_name(cert));
    c.version = X509_get_version(cert) + 1;
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
        if (char* hex = BN_bn2hex(bn)) {
            c.serial_number = hex;
            OPENSSL_free(hex);
        }
        BN_free(bn);
    }
    c.not_before = asn1_time_text(X509_get0_notBefore(cert));
    c.not_after = asn1_time_text(X509_get0_notAfter(cert));
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
        auto text = [](const ASN1_STRING* s) {
            return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s)));
        };
        switch (g->type) {
        case GEN_DNS: c.subject_alt_name.emplace_back("DNS", text(g->d.dNSName)); break;
        case GEN_EMAIL: c.subject_alt_name.emplace_back("email", text(g->d.rfc822Name)); break;
        case GEN_URI: c.subject_alt_name.emplace_back("URI", text(g->d.uniformResourceIdentifier)); break;
        case GEN_IPADD: {
            const unsigned char* p = ASN1_STRING_get0_data(g->d.iPAddress);
            const int n = ASN1_STRING_length(g->d.iPAddress);
            char out[64] = {};
            if (n == 4) {
                std::snprintf(out, sizeof out, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
            } else if (n == 16) {  // Python prints every group, upper-case, unshortened
                int at = 0;
                for (int k = 0; k < 16; k += 2)
                    at += std::snprintf(out + at, sizeof out - static_cast<std::size_t>(at), k ? ":%X" : "%X", (p[k] << 8) | p[k + 1]);
            }
            c.subject_alt_name.emplace_back("IP Address", out);
            break;
        }
        default: break;
        }
    }
    GENERAL_NAMES_free(names);
    return c;
}

}  // namespace detail

class ssl_object {
public:
    explicit ssl_object(SSL* ssl) noexcept : ssl_(ssl) {
        if (ssl_) SSL_up_ref(ssl_);
    }
    ssl_object(const ssl_object& other) noexcept : ssl_object(other.ssl_) {}
    ssl_object& operator=(ssl_object other) noexcept {
        std::swap(ssl_, other.ssl_);
        return *this;
    }
    ~ssl_object() { SSL_free(ssl_); }

    // "TLSv1.3", "TLSv1.2", ...
    std::string version() const { return SSL_get_version(ssl_); }
    tls_cipher cipher() const {
        const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
        if (!c) return {};
        return {SSL_CIPHER_get_name(c), SSL_CIPHER_get_version(c), SSL_CIPHER_get_bits(c, nullptr)};
    }
    std::optional<std::string> selected_alpn_protocol() const {
        const unsigned char* p = nullptr;
        unsigned n = 0;
        SSL_get0_alpn_selected(ssl_, &p, &n);
        if (n == 0) return std::nullopt;
        return std::string(reinterpret_cast<const char*>(p), n);
    }
    // The peer's certificate, decoded (nullopt when it sent none).
    std::optional<peer_certificate> getpeercert() const {
        X509* cert = SSL_get1_peer_certificate(ssl_);
        if (!cert) return std::nullopt;
        peer_certificate c = detail::decode_certificate(cert);
        X509_free(cert);
        return c;
    }
    // The peer's certificate in DER ("" when it sent none): Python's
    // getpeercert(binary_form=True).
    std::string peer_certificate_der() const {
        X509* cert = SSL_get1_peer_certificate(ssl_);
        if (!cert) return {};
        unsigned char* der = nullptr;
        const int n = i2d_X509(cert, &der);
        std::string out = n > 0 ? std::string(reinterpret_cast<char*>(der), static_cast<std::size_t>(n)) : std::string();
        OPENSSL_free(der);
        X509_free(cert);
        return out;
    }
    bool server_side() const noexcept { return SSL_is_server(ssl_) == 1; }
    // What the client asked for (SNI); "" when none.
    std::string server_hostname() const {
        const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
        return name ? name : "";
    }
    SSL* native_handle() const noexcept { return ssl_; }

private:
    SSL* ssl_ = nullptr;
};

}  // namespace aio
